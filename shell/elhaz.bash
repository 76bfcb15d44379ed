# elhaz prompt hook for bash. Install: eval "$(elhaz hook bash)" in ~/.bashrc
#
# While the credentials are fresh a prompt only compares integers with builtins: no
# process starts. Once ELHAZ_REFRESH_AT (else ELHAZ_EXPIRES_AT - 600) and the retry
# time have passed, it evals `elhaz hook bash --refresh`, which decides the rest.
# shellcheck shell=bash disable=SC2250,SC2312 # braces where needed; eval's status.
_ELHAZ_BIN="${_ELHAZ_BIN:-elhaz}"

_elhaz_hook() {
  local s=$? x=$- now=${EPOCHSECONDS-} at=${ELHAZ_REFRESH_AT-}
  [[ ${PWD-} == "${_ELHAZ_PWD-}" ]] || _elhaz_pin
  # A `--server` session refreshes through its endpoint.
  [[ -n ${ELHAZ_SESSION-} && -z ${AWS_CONTAINER_AUTHORIZATION_TOKEN-} ]] || return "$s"
  [[ -n $now ]] || \builtin printf -v now '%(%s)T' -1
  # Plain decimals only (globs: a regex costs more than the rest; 10#: no octal).
  if [[ -n $at && $at != *[!0-9]* && ${#at} -le 18 ]]; then at=$((10#$at)); else
    at=${ELHAZ_EXPIRES_AT-}
    if [[ -n $at && $at != *[!0-9]* && ${#at} -le 18 ]]; then at=$((10#$at - 600)); else at=0; fi
  fi
  if ((now >= at && now >= ${_ELHAZ_RETRY_AT:-0})); then
    { \builtin set +x; } 2>/dev/null # set -x would show the credentials.
    _ELHAZ_RETRY_AT=$((now + 60))    # until it answers: Ctrl-C must not retry at once.
    \builtin eval "$(_elhaz_bin --client-timeout 2 hook bash --refresh --warned "${_ELHAZ_WARNED-}")"
    [[ $x != *x* ]] || \builtin set -x
  fi
  return "$s"
}

# A project pin: the nearest .elhaz.yaml up to / or $HOME, found with builtins. Only
# when it is another file than at the last prompt does the binary decide (switch,
# restore, or a warning); a cd within the same tree starts no process.
_elhaz_pin() {
  local x=$- d=${PWD-} f found=
  _ELHAZ_PWD=${PWD-}
  [[ $d != / ]] || d=
  while :; do
    f=$d/.elhaz.yaml
    if [[ -e $f || -L $f ]]; then found=$f && break; fi
    [[ -n $d && $d != "${HOME-}" ]] || break
    d=${d%/*}
  done
  [[ $found != "${_ELHAZ_PIN-}" ]] || return 0
  _ELHAZ_PIN=$found
  { \builtin set +x; } 2>/dev/null # set -x would show the credentials.
  \builtin eval "$(_elhaz_bin --client-timeout 2 hook bash --pin "$found" --pinned "${_ELHAZ_PINNED-}" --use-tree "${_ELHAZ_USE_TREE-}" --stashed "${_ELHAZ_STASHED-}" --before-pin "${_ELHAZ_BEFORE_PIN-}")"
  [[ $x != *x* ]] || \builtin set -x
}

# The source keys this shell keeps (from `elhaz shell`, or from before the first
# `use`) go to the binary as assignments for one command: never exported, nor argv.
_elhaz_bin() {
  if [[ -z ${_ELHAZ_SRC-} ]]; then
    \command "$_ELHAZ_BIN" "$@"
  else
    ELHAZ_SOURCE_AWS_ACCESS_KEY_ID=${_ELHAZ_SRC_AWS_ACCESS_KEY_ID-} \
      ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY=${_ELHAZ_SRC_AWS_SECRET_ACCESS_KEY-} \
      ELHAZ_SOURCE_AWS_SESSION_TOKEN=${_ELHAZ_SRC_AWS_SESSION_TOKEN-} \
      \command "$_ELHAZ_BIN" "$@"
  fi
}

# `elhaz use NAME|--clear` evals what the binary prints: the first `use` saves what
# it changes in unexported copies, `--clear` puts it back, as a venv's deactivate
# does. The rest goes to the binary.
elhaz() {
  local x=$- out rc=0
  { \builtin set +x; } 2>/dev/null
  if [[ ${1-} != use ]]; then
    _elhaz_bin "$@" || rc=$?
  elif out=$(_elhaz_bin use --eval --shell bash "${@:2}"); then
    \builtin eval "$out"
    # An explicit NAME wins in this pin's tree; --clear ends it, a pin's own, and
    # the NAME a pin's tree would give back on leaving.
    if [[ ${2-} == --clear ]]; then unset _ELHAZ_USE_TREE _ELHAZ_PINNED _ELHAZ_BEFORE_PIN; else
      _ELHAZ_USE_TREE=${_ELHAZ_PIN-}
      _ELHAZ_PINNED=
    fi
  else
    rc=$?
  fi
  [[ $x != *x* ]] || \builtin set -x
  return "$rc"
}

# Install once, first in PROMPT_COMMAND (a string, or an array in bash 5.1+), so
# that the commands after it still see the user's $?.
_elhaz_install() {
  local pc
  for pc in "${PROMPT_COMMAND[@]}"; do
    [[ ";${pc//[[:space:]]/;};" == *";_elhaz_hook;"* ]] && return 0
  done
  if [[ -n ${PROMPT_COMMAND+set} && ${PROMPT_COMMAND@a} == *a* ]]; then
    PROMPT_COMMAND=(_elhaz_hook "${PROMPT_COMMAND[@]}")
  else
    # A plain string here (the array case is above).
    # shellcheck disable=SC2178,SC2128
    PROMPT_COMMAND="_elhaz_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
  fi
}
_elhaz_install
unset -f _elhaz_install
