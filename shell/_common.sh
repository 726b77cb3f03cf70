# Sourced by every shell/*.sh, which may set ARG_NAME (its one positional argument, e.g. TASK) before sourcing.
#   -h, --help   print the script's header comment (what it reproduces, arguments, environment, expected result,
#                hardware) and exit 0, running nothing
#   -v           print each command before running it
#   -v -v        also trace the script's own logic (set -x); each command is still printed once
# need_file / need_dir / need_model: a script checks its inputs with these before it runs or writes anything; a
# missing one is one line "error: ..." on stderr and exit code 2.
# Run from anywhere: the scripts cd to the repository root.
set -euo pipefail
SCRIPT=$0
SCRIPT_PATH=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")  # before the cd below: $0 may be relative
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ARG_NAME=${ARG_NAME:-}

usage() {
  echo "usage: $SCRIPT${ARG_NAME:+ [$ARG_NAME]} [-v [-v]] [-h|--help]" >&2
  exit 2
}

print_help() {  # the header: the comment lines after the #! line, up to the first line of code
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$SCRIPT_PATH"
  echo
  echo "usage: $SCRIPT${ARG_NAME:+ [$ARG_NAME]} [-v [-v]] [-h|--help]"
  echo "  -v: print each command before running it; -v -v: also trace the script's logic (set -x)"
  echo "  -h, --help: this text (nothing is run)"
}

die() {
  echo "error: $*" >&2
  exit 2
}

# A local model path as python's loaders see one (loading.py): absolute, ./ or ~, or with more than one /;
# anything else is a hub name, left to the script (no download here).
is_local_path() {
  case "$1" in
    /* | .* | "~"*) return 0 ;;
  esac
  local slashes=${1//[^\/]/}
  [ "${#slashes}" -gt 1 ]
}

need_file() {  # need_file PATH WHAT [HINT]
  { set +x; } 2>/dev/null
  [ -f "$1" ] || die "$2 $1: no such file${3:+; $3}"
  [ "$VERBOSE" -lt 2 ] || set -x
}

need_dir() {  # need_dir PATH WHAT [HINT]
  { set +x; } 2>/dev/null
  [ -d "$1" ] || die "$2 $1: no such folder${3:+; $3}"
  [ "$VERBOSE" -lt 2 ] || set -x
}

need_model() {  # need_model NAME WHAT: a saved model's folder (config.json), or a hub name
  { set +x; } 2>/dev/null
  local path=${1/#\~/$HOME}
  if [ -e "$path" ] || is_local_path "$1"; then
    [ -d "$path" ] || die "$2 $1: no such folder; expected a saved model's folder or a hub name"
    [ -f "$path/config.json" ] || die "$2 $1: no config.json in the folder; expected a saved model (save_pretrained)"
  fi
  [ "$VERBOSE" -lt 2 ] || set -x
}

# Under -v -v, set -x already prints the line "+ run COMMAND": run then neither echoes nor traces it again.
run() {
  { set +x; } 2>/dev/null
  if [ "$VERBOSE" -eq 1 ]; then
    local word line="+" plain='^[A-Za-z0-9_./:=,+@%-]+$' quote="'\\''"
    for word in "$@"; do  # quoted as set -x would, so the line can be pasted back
      if [[ "$word" =~ $plain ]]; then line+=" $word"; else line+=" '${word//\'/$quote}'"; fi
    done
    echo "$line" >&2
  fi
  "$@"
  [ "$VERBOSE" -lt 2 ] || set -x
}

# Other words land in POSITIONAL (at most one, the script's ARG_NAME); an unknown -flag is an error.
VERBOSE=0
POSITIONAL=()
for arg in "$@"; do
  case "$arg" in
    -h | --help) print_help; exit 0 ;;
    -v) VERBOSE=$((VERBOSE + 1)) ;;
    -*) usage ;;
    *) POSITIONAL+=("$arg") ;;
  esac
done
if [ "${#POSITIONAL[@]}" -gt "$([ -n "$ARG_NAME" ] && echo 1 || echo 0)" ]; then usage; fi
if [ "$VERBOSE" -ge 2 ]; then set -x; fi
