#!/usr/bin/env bash
# Mutation-testing run (issue 21): mutate ONE pipeline module and run only its own fast tests.
#
#   scripts/mutation_run.sh NAME MODULE TEST [TEST ...]
#   e.g. scripts/mutation_run.sh provenance src/layerscope/provenance.py tests/core/test_output.py
#
# Needs the `mutation` extra (pip install -e '.[mutation]', i.e. mutmut>=3.8). The run happens in a
# scratch copy, .mutation/NAME/ (git-ignored), whose pyproject.toml gets a [tool.mutmut] section for
# this module and these tests; the repository's own [tool.mutmut] section holds the shared settings.
# One child process, OMP_NUM_THREADS=1, nice 10. MUTANTS="name1 name2 ..." restricts the run to a
# sample of mutants; SAMPLE=N [SEED=21] [SAMPLE_FROM="glob ..."] draws N of the generated mutants (those
# whose names match one of the globs) at random instead (docs/mutation.md says how each sample was drawn).
# Results: `mutmut results` / `mutmut show NAME` inside .mutation/NAME/.
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 NAME MODULE TEST [TEST ...]" >&2; exit 2; }
name=$1; module=$2; shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
mutmut=$(dirname "$(command -v "$py")")/mutmut
work=$repo/.mutation/$name
mkdir -p "$work"
rm -rf "$work/src" "$work/tests"
cp -a "$repo/src" "$repo/tests" "$work/"
# mutmut forks each mutant's test run from a process that has already run the tests: Dask's cached
# thread pools come across the fork without their threads, and the first threaded compute waits
# forever (a false timeout). The scratch copy's conftest gives each forked child fresh pools.
cat >> "$work/tests/conftest.py" <<'EOF'


def _fresh_dask_pools_after_fork() -> None:  # added by scripts/mutation_run.sh (scratch copy only)
    import threading
    import dask.threaded
    dask.threaded.pools.clear()
    dask.threaded.default_pool = None
    dask.threaded.pools_lock = threading.Lock()


import os as _os  # noqa: E402
_os.register_at_fork(after_in_child=_fresh_dask_pools_after_fork)
EOF
# tests read real data from <repo>/../shared/data; in the scratch copy that is .mutation/NAME/../shared
[ -e "$work/shared" ] || ln -s "$(cd "$repo/.." && pwd)/shared" "$work/shared"
"$py" - "$repo/pyproject.toml" "$work/pyproject.toml" "$module" "$@" <<'PY'
import re, sys, json
src, dst, module, *tests = sys.argv[1:]
text = open(src).read()
sel = json.dumps(tests)
section = re.search(r"^\[tool\.mutmut\]\n(?:(?!^\[).*\n?)*", text, re.M)
body = section.group(0) if section else "[tool.mutmut]\n"
body = re.sub(r"^only_mutate\s*=.*\n|^pytest_add_cli_args_test_selection\s*=.*\n", "", body, flags=re.M)
body = body.rstrip("\n") + f'\nonly_mutate = ["{module}"]\npytest_add_cli_args_test_selection = {sel}\n'
text = text.replace(section.group(0), body) if section else text + "\n" + body
open(dst, "w").write(text)
PY
cd "$work"
export OMP_NUM_THREADS=1 MPLBACKEND=Agg PYTHONPATH=
if [ -n "${SAMPLE:-}" ] && [ -z "${MUTANTS:-}" ]; then
    # generate the mutants only, then draw SAMPLE of them at random (seed SEED, default 21)
    MUTANTS=$(nice -n 10 "$py" - "$SAMPLE" "${SEED:-21}" "${SAMPLE_FROM:-*}" <<'PY'
import contextlib, fnmatch, json, random, sys
from pathlib import Path
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants, set_mutant_under_test,
                             setup_source_paths)
Path("mutants").mkdir(exist_ok=True)
set_mutant_under_test("mutant_generation")
with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the drawn names
    copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(1)
n, seed, patterns = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split()
names = sorted(k for meta in Path("mutants").rglob("*.py.meta") for k in json.loads(meta.read_text())["exit_code_by_key"]
               if any(fnmatch.fnmatch(k, p) for p in patterns))
print(" ".join(sorted(random.Random(seed).sample(names, min(n, len(names))))))
print(f"{len(names)} mutants generated; a sample of {min(n, len(names))} (seed {seed}) runs", file=sys.stderr)
PY
)
fi
# shellcheck disable=SC2086
nice -n 10 "$mutmut" run --max-children 1 ${MUTANTS:-}
"$mutmut" results --all true > results.txt 2>&1 || true
