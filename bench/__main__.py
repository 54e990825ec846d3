"""Run every benchmark (`python -m bench`) or every evaluation (`python -m bench eval`), each in its own process.

Benchmarks are subpackages `bench/NAME/` with a `__main__.py`; evaluations are the ones named `eval_*`.
Each prints its figure on its last line. Reference data lives in ../shared/data (TOCSIN_SHARED_DATA_DIR);
a benchmark or evaluation that needs it and finds it absent says so and exits 0.
"""

import pkgutil
import subprocess
import sys
from pathlib import Path


def main() -> int:
    want_eval = len(sys.argv) > 1 and sys.argv[1] == "eval"
    here = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.ispkg)
    names = [n for n in names if n.startswith("eval_") == want_eval]
    wanted = sys.argv[2:] if want_eval else sys.argv[1:]  # `python -m bench NAME...` runs those
    if wanted:
        unknown = set(wanted) - set(names)
        if unknown:
            print(f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(names)}")
            return 2
        names = [n for n in names if n in wanted]
    failed = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        if subprocess.call([sys.executable, "-m", f"bench.{name}"]) != 0:
            failed.append(name)
    if not names:
        print("nothing to run")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
