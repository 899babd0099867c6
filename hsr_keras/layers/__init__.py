"""Keras 3 layers of hsr-keras; all take and return [batch, time, H, W, channels]."""

from hsr_keras.layers.broadcast_concatenate import BroadcastConcatenate
from hsr_keras.layers.cbam import CBAM
from hsr_keras.layers.conv_gru import ConvGRU, ConvGRUCell
from hsr_keras.layers.frame_conv import FrameConv2D
from hsr_keras.layers.icnr import ICNR
from hsr_keras.layers.multi_kernel_stem import MultiKernelStem
from hsr_keras.layers.noise_injection import NoiseInjection
from hsr_keras.layers.pixel_shuffle import PixelShuffle
from hsr_keras.layers.residual_block import ResidualBlock
from hsr_keras.layers.sampling_gaussian_noise import SamplingGaussianNoise
from hsr_keras.layers.squeeze_excitation import SqueezeExcitation
from hsr_keras.layers.standardize import Standardize
from hsr_keras.layers.stride_upsampling import StrideUpsampling

__all__ = [
    "BroadcastConcatenate",
    "CBAM",
    "ConvGRU",
    "ConvGRUCell",
    "FrameConv2D",
    "ICNR",
    "MultiKernelStem",
    "NoiseInjection",
    "PixelShuffle",
    "ResidualBlock",
    "SamplingGaussianNoise",
    "SqueezeExcitation",
    "Standardize",
    "StrideUpsampling",
]
