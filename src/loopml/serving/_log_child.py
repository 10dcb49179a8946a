"""``python -m loopml.serving._log_child DIRECTORY TIME_COLUMN``: the prediction log's
journal converter (``PredictionLogWriter(convert_in_child=True)``), a module of its own so
that running it does not import ``loopml.serving._log`` twice."""

import sys

from loopml.serving._log import _converter_main

if __name__ == "__main__":
    _converter_main(sys.argv[1], sys.argv[2])
