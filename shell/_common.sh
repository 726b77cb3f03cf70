# Sourced by every shell/*.sh: -v prints each command before running it, -v -v also turns on set -x.
# Run from anywhere: the scripts cd to the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Other words land in POSITIONAL (run-glue.sh takes its TASK there); an unknown -flag is an error.
VERBOSE=0
POSITIONAL=()
for arg in "$@"; do
  case "$arg" in
    -v) VERBOSE=$((VERBOSE + 1)) ;;
    -*) echo "usage: $0 [ARG] [-v [-v]]" >&2; exit 2 ;;
    *) POSITIONAL+=("$arg") ;;
  esac
done
[ "$VERBOSE" -ge 2 ] && set -x
run() {
  if [ "$VERBOSE" -ge 1 ]; then echo "+ $*" >&2; fi
  "$@"
}
