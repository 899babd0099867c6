"""hsr-keras: super-resolution of ERA5 relative humidity with a WGAN-GP in Keras 3."""

import os

# TensorFlow's C++ start-up chatter (CPU features, missing CUDA) hides the progress a user
# wants to see; errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
