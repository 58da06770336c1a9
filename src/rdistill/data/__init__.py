"""Records, files and the run manifest: the only things stages share.

Every stage reads and writes the files below with the schemas documented in `docs/schema.md`;
nothing else passes between stages.
"""

from rdistill.data.io import (
    JsonlAppender,
    atomic_path,
    file_hash,
    key_seed,
    read_jsonl,
    read_jsonl_lines,
    read_parquet,
    stable_id,
    write_json,
    write_jsonl,
    write_parquet,
)
from rdistill.data.schema import (
    BASE_FILE,
    EVAL_COLUMNS,
    GROUP_LABELS,
    GROUPS,
    PROBLEM_COLUMNS,
    ROLLOUT_COLUMNS,
    SFT_COLUMNS,
    VERDICT_COLUMNS,
    VERIFIED_COLUMNS,
    assistant_content,
    read_base,
    read_records,
    require_columns,
    row_label,
    sft_messages,
    sft_problems,
)

__all__ = [
    "BASE_FILE",
    "EVAL_COLUMNS",
    "GROUPS",
    "GROUP_LABELS",
    "PROBLEM_COLUMNS",
    "ROLLOUT_COLUMNS",
    "SFT_COLUMNS",
    "VERDICT_COLUMNS",
    "VERIFIED_COLUMNS",
    "JsonlAppender",
    "assistant_content",
    "atomic_path",
    "file_hash",
    "key_seed",
    "read_jsonl",
    "read_jsonl_lines",
    "read_base",
    "read_parquet",
    "read_records",
    "require_columns",
    "row_label",
    "sft_messages",
    "sft_problems",
    "stable_id",
    "write_json",
    "write_jsonl",
    "write_parquet",
]
