# Sourced by every shell/*.sh: -v prints each command before running it, -v -v also turns on set -x.
# Run from anywhere: the scripts cd to the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VERBOSE=0
for arg in "$@"; do
  case "$arg" in
    -v) VERBOSE=$((VERBOSE + 1)) ;;
    *) echo "usage: $0 [-v [-v]]" >&2; exit 2 ;;
  esac
done
[ "$VERBOSE" -ge 2 ] && set -x
run() {
  if [ "$VERBOSE" -ge 1 ]; then echo "+ $*" >&2; fi
  "$@"
}
