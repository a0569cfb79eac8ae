"""Parquet files as Hugging Face datasets ship them (written by pyarrow), for test/data.test.ts:
prompt/completion rows in two row groups with snappy compression, and chat `messages` (a list of
structs) with zstd, plus the same rows as JSON for comparison. Run in the peers' environment:
    bench/peers/.venv/bin/python test/reference/make_data_fixtures.py
"""
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

OUT = os.path.join(os.path.dirname(__file__), "fixtures", "data")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    pc = [{"prompt": f"Question {i}: what is {i} + {i}?", "completion": f" {2 * i}.", "id": i} for i in range(7)]
    pq.write_table(pa.Table.from_pylist(pc), os.path.join(OUT, "pc.parquet"), compression="snappy", row_group_size=4)
    chat = [
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                      {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3?"},
                      {"role": "assistant", "content": "6"}]},
    ]
    pq.write_table(pa.Table.from_pylist(chat), os.path.join(OUT, "chat.parquet"), compression="zstd")
    with open(os.path.join(OUT, "parquet-rows.json"), "w") as f:
        json.dump({"pc": pc, "chat": chat, "pyarrow": pa.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
