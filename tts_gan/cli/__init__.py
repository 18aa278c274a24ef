"""Console scripts (setup.cfg entry points). Importing this package quiets TensorFlow's C++ info
logging (oneDNN / CPU-feature banners) unless the user set ``TF_CPP_MIN_LOG_LEVEL`` already."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_main(main, module_name: str) -> None:
    """``absl.app.run(main)`` whose ``--help`` lists the flags of ``module_name``.

    absl's ``--help`` shows the key flags of ``sys.argv[0]``; for a console script that is the
    generated wrapper, which defines none, so the defining module's flags are registered there.
    """
    import sys

    from absl import app, flags

    for flag in flags.FLAGS.get_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main)
