"""Console scripts (setup.cfg entry points). Importing this package quiets TensorFlow's C++ info
logging (oneDNN / CPU-feature banners) unless the user set ``TF_CPP_MIN_LOG_LEVEL`` already."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
