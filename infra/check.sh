#!/usr/bin/env bash
# Build the Lambda package, package serverless.yml offline with osls, lint the CloudFormation.
#
#   bash infra/check.sh          build, npm ci, osls package (dev and prod, dummy credentials), cfn-lint
#   bash infra/check.sh build    only build build/digestpub-lambda.zip (run it before `npx osls deploy`)
#
# Needs python3 with pip (reaching PyPI; the build installs exactly infra/requirements.lock),
# node/npm (reaching npm) and cfn-lint
# (PyPI; found on PATH or as `python3 -m cfnlint`). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
ARTIFACT=build/digestpub-lambda.zip
# Exact versions with their hashes: two builds of one commit hold the same packages.
LOCK=infra/requirements.lock
# Dependencies published only as an sdist (pure Python): built into a py3-none-any
# wheel first, so that the cross-platform install below can stay --only-binary=:all:.
SDIST_ONLY=(feedgen)

log() { printf '== %s\n' "$*" >&2; }

build() {
  local started=$SECONDS
  log "build: exact, hashed requirements from $LOCK"
  rm -rf build/lambda build/wheels build/sdist-built "$ARTIFACT"
  mkdir -p build/lambda build/wheels
  # The lock must hold every dependency pyproject names (to refresh it: infra/README.md). It is
  # split in two: the sdist-only packages, built here, and the wheels, installed as published.
  "$PYTHON" - "$LOCK" "${SDIST_ONLY[@]}" <<'EOF'
import re, sys, tomllib
from pathlib import Path

lock, sdist_only = Path(sys.argv[1]), {name.lower() for name in sys.argv[2:]}


def name_of(requirement):
    return re.split(r"[\s\[<>=~!;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


blocks, current = [], []
for line in lock.read_text().splitlines():
    if not line or line.lstrip().startswith("#"):
        continue
    if not line[0].isspace() and current:
        blocks.append(current)
        current = []
    current.append(line)
blocks += [current] if current else []
pinned = {name_of(block[0]): block for block in blocks}
wanted = {name_of(r) for r in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]}
missing = sorted(wanted - pinned.keys())
if missing:
    sys.exit(f"{lock} lacks {', '.join(missing)}: refresh it (see infra/README.md)")
for out, built_here in (("build/requirements.txt", False), ("build/sdist-requirements.txt", True)):
    chosen = [block for name, block in pinned.items() if (name in sdist_only) == built_here]
    Path(out).write_text("".join("\n".join(block) + "\n" for block in chosen))
EOF

  log "build: sdist-only dependencies, checked against their hashes, as wheels: ${SDIST_ONLY[*]}"
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --require-hashes \
    --wheel-dir build/wheels -r build/sdist-requirements.txt

  log "build: manylinux2014_x86_64 wheels for CPython 3.12 into build/lambda, each checked against its hash"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    --target build/lambda \
    --platform manylinux2014_x86_64 --implementation cp --python-version 3.12 \
    --only-binary=:all: --require-hashes --no-deps --no-compile \
    -r build/requirements.txt
  # Beside them, the pure-Python wheels just built from the hashed sdists.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    --target build/sdist-built --no-index --no-deps --no-compile build/wheels/*.whl
  cp -R build/sdist-built/. build/lambda/
  rm -rf build/sdist-built

  log "build: digestpub, templates and functions beside the dependencies"
  cp -R src/digestpub build/lambda/digestpub
  cp -R templates build/lambda/templates
  mkdir -p build/lambda/functions
  cp functions/*.py build/lambda/functions/
  rm -rf build/lambda/bin
  find build/lambda -name __pycache__ -type d -prune -exec rm -rf {} +
  find build/lambda -name '*.pyc' -delete

  # /var/task is read-only in Lambda: without bytecode in the package every cold start
  # compiles every module it imports (measured here: 0.85-1.0 s per handler, against
  # 0.4 s with bytecode). Hash-based .pyc (unchecked-hash) does not depend on the
  # timestamps the zip flattens. Needs CPython 3.12 itself; skipped without one.
  local py312="" candidate
  for candidate in "${PYTHON312:-}" python3.12 "$(pyenv root 2>/dev/null || echo /nonexistent)"/versions/3.12*/bin/python3.12 \
    "${HOME:-/nonexistent}"/.pyenv/versions/3.12*/bin/python3.12 /usr/bin/python3.12 /usr/local/bin/python3.12; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then
      py312=$candidate
      break
    fi
  done
  if [ -n "$py312" ]; then
    log "build: bytecode for CPython 3.12 ($py312)"
    "$py312" -m compileall -q -j0 --invalidation-mode unchecked-hash build/lambda >/dev/null
  else
    log "build: WARNING no python3.12 found (set PYTHON312=...): no bytecode, slower cold starts, handler imports unchecked"
  fi

  log "build: $ARTIFACT"
  "$PYTHON" - "$ARTIFACT" <<'EOF2'
import os, sys, zipfile
from pathlib import Path

root, out = Path("build/lambda"), Path(sys.argv[1])
# Fixed timestamps and order: the same tree gives the same zip, so osls sees "no change".
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, path.read_bytes())

names = zipfile.ZipFile(out).namelist()
tops = {name.split("/", 1)[0] for name in names}
required = ["digestpub/__init__.py", "templates/page.html.j2"] + [f"functions/{p.name}" for p in Path("functions").glob("*.py")]
missing = [name for name in required if name not in names]
unwanted = sorted(tops & {"src", "tests", "bench", "examples", "node_modules", ".venv", "build", ".serverless"})
if missing or unwanted:
    sys.exit(f"{out}: missing {missing}, unwanted {unwanted}")
unpacked = sum((root / name).stat().st_size for name in names)
print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB zipped, {unpacked / 2**20:.1f} MiB unpacked "
      f"(Lambda's limit: 250 MiB unpacked), {len(names)} files", file=sys.stderr)
EOF2

  # Import every handler the way a cold start does: CPython 3.12, a fresh process each,
  # the package root first on sys.path, no site-packages (-S), nothing written.
  if [ -n "$py312" ]; then
    log "build: cold import of each handler under CPython 3.12"
    local name
    for name in publish_feeds plan_newsletter send_batch subscriptions ses_events; do
      [ -f "functions/$name.py" ] || continue
      (cd build/lambda && env -i PATH="$PATH" HOME="${HOME:-/tmp}" PYTHONDONTWRITEBYTECODE=1 \
        AWS_REGION=eu-central-1 AWS_DEFAULT_REGION=eu-central-1 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \
        DIGESTPUB_SEND_QUEUE_URL=https://sqs.eu-central-1.amazonaws.com/000000000000/x \
        POWERTOOLS_SERVICE_NAME=digestpub POWERTOOLS_METRICS_NAMESPACE=digestpub \
        "$py312" -S -c '
import importlib, sys, time
sys.path.insert(0, ".")
name = sys.argv[1]
started = time.perf_counter()
module = importlib.import_module(f"functions.{name}")
elapsed = time.perf_counter() - started
assert callable(module.handler), name
from digestpub.templates import template_folder
assert template_folder().resolve().parent == __import__("pathlib").Path(".").resolve(), template_folder()
print(f"  functions.{name}: {elapsed:.2f} s", file=sys.stderr)
' "$name")
    done
  fi
  log "build: done in $((SECONDS - started)) s"
}

if [ "${1:-}" = build ]; then
  build
  exit 0
fi

started=$SECONDS
build

# npm ci deletes node_modules and writes it again: when it already holds what the
# lock file names, it is left alone, so the HTML checker there (the page tests use
# it, maybe at this moment) is never pulled away.
if [[ -f node_modules/.package-lock.json ]] && npm ls --all >/dev/null 2>&1; then
  log "npm: node_modules already holds package-lock.json's packages"
else
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Offline: dummy credentials, no profile; osls package never calls AWS with package.artifact set.
export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_REGION=eu-central-1 AWS_DEFAULT_REGION=eu-central-1
unset AWS_PROFILE AWS_SESSION_TOKEN
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off

# prod first: every `osls package` empties .serverless/, wherever its --package points.
log "osls package --stage prod (into build/serverless-prod)"
npx --no-install osls package --stage prod --package build/serverless-prod
test -s build/serverless-prod/cloudformation-template-update-stack.json
log "osls package --stage dev"
npx --no-install osls package --stage dev
test -s .serverless/cloudformation-template-update-stack.json

if command -v cfn-lint >/dev/null 2>&1; then
  CFN_LINT=(cfn-lint)
else
  CFN_LINT=("$PYTHON" -m cfnlint)
fi
log "cfn-lint infra/*.yml"
"${CFN_LINT[@]}" infra/*.yml
log "cfn-lint packaged templates"
# W3005 is silenced for the packaged templates only: osls's httpApi compiler gives each
# route a DependsOn on its integration next to a Ref to it. Redundant, harmless, not ours.
"${CFN_LINT[@]}" --ignore-checks W3005 --template \
  .serverless/cloudformation-template-update-stack.json \
  build/serverless-prod/cloudformation-template-update-stack.json

log "all deployment checks passed in $((SECONDS - started)) s"
