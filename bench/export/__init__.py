"""``bench export`` and ``bench verify``: a competition submission made from one method, and checked.

Layout written (the competition's submission layout; README, *Exporting a submission*)::

    RESULT_DIR/data/denoise{i}.dng            one per input noisy{i}.dng, spliced into a copy of it
    RESULT_DIR/algorithm/models/alg.py        classical method: self-contained script
    RESULT_DIR/algorithm/models/network.py    learned method: network + inference, self-contained
    RESULT_DIR/algorithm/models/model.pth     learned method: its weights (at most 50 MB)
    RESULT_DIR/algorithm/README.md            method report
    RESULT_DIR/algorithm/export.json          what verification needs: inputs and their hashes, method
    RESULT_DIR/../result.zip                  all of it under a top folder result/

The scripts are assembled from the harness's own source (``bench.codegen``), and the DNGs are written by
the harness itself through ``bench.pipeline``; verification then runs the exported script alone, in a
fresh process that cannot import ``bench`` or ``methods``, in a temporary folder holding only copies of
``algorithm/models/`` and of the inputs, and requires byte-identical files. That re-run executes the
submission's code with the user's rights: verify only submissions you made or trust.

One module per concern, each importing only those before it::

    choose      Choice, best_in_run: which method, with which parameters
    record      ExportRecord: export.json, written and read back with checks
    script      the source of alg.py / network.py (bench.codegen), and what a script declares
    verify      verify_submission and its checks
    submission  export_submission: data files, model.pth, the method report, result.zip
"""

from bench.export.choose import EXPORTABLE_KINDS, Choice, best_in_run
from bench.export.record import MANIFEST_FORMAT, ExportRecord, ImageRecord, InputsRecord
from bench.export.script import exportable, script_declares, script_source, write_script_only
from bench.export.submission import ExportResult, export_submission, write_model_file, write_zip
from bench.export.verify import MAX_MODEL_BYTES, verify_submission

__all__ = ["EXPORTABLE_KINDS", "MANIFEST_FORMAT", "MAX_MODEL_BYTES", "Choice", "ExportRecord", "ExportResult",
           "ImageRecord", "InputsRecord", "best_in_run", "export_submission", "exportable", "script_declares",
           "script_source", "verify_submission", "write_model_file", "write_script_only", "write_zip"]
