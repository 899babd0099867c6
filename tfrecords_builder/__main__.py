"""`python -m tfrecords_builder ...` builds TFRecords; `... synthetic ...` writes demo ERA5-like files;
`... download ...` fetches ERA5 from the Copernicus Climate Data Store."""

import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["synthetic"]:
        from tfrecords_builder import synthetic

        return synthetic.main(argv[1:])
    if argv[:1] == ["download"]:
        from tfrecords_builder import download

        return download.main(argv[1:])
    from tfrecords_builder import build

    return build.main(argv)


if __name__ == "__main__":
    sys.exit(main())
