# elhaz prompt hook for zsh. Install: eval "$(elhaz hook zsh)" in ~/.zshrc
#
# While the credentials are fresh a prompt only compares integers (EPOCHSECONDS is
# zsh/datetime's): no process starts. Once ELHAZ_REFRESH_AT (else ELHAZ_EXPIRES_AT -
# 600) and the retry time have passed, it evals `elhaz hook zsh --refresh`, which
# decides the rest.
typeset -g _ELHAZ_BIN="${_ELHAZ_BIN:-elhaz}"
zmodload zsh/datetime 2>/dev/null

_elhaz_hook() {
  local s=$?
  [[ ${PWD-} == "${_ELHAZ_PWD-}" ]] || _elhaz_pin
  # A `--server` session refreshes through its endpoint.
  if [[ -n ${ELHAZ_SESSION-} && -z ${AWS_CONTAINER_AUTHORIZATION_TOKEN-} ]]; then
    \builtin emulate -L zsh -o noxtrace  # xtrace would show the credentials.
    # Plain decimals only (a glob, not =~: no module, no $MATCH).
    local now=${EPOCHSECONDS:-0} at=${ELHAZ_REFRESH_AT-}
    if [[ $at != <-> || ${#at} -gt 18 ]]; then
      at=${ELHAZ_EXPIRES_AT-}
      if [[ $at == <-> && ${#at} -le 18 ]]; then at=$((at - 600)); else at=0; fi
    fi
    if (( now >= at && now >= ${_ELHAZ_RETRY_AT:-0} )); then
      typeset -g _ELHAZ_RETRY_AT=$((now + 60))  # until it answers: Ctrl-C must not retry at once.
      \builtin eval "$(_elhaz_bin --client-timeout 2 hook zsh --refresh --warned "${_ELHAZ_WARNED-}")"
    fi
  fi
  return $s
}

# A project pin: the nearest .elhaz.yaml up to / or $HOME, found with builtins. Only
# when it is another file than at the last prompt does the binary decide (switch,
# restore, or a warning); a cd within the same tree starts no process.
_elhaz_pin() {
  \builtin emulate -L zsh -o noxtrace  # xtrace would show the credentials.
  local d=${PWD-} f found=
  typeset -g _ELHAZ_PWD=${PWD-}
  [[ $d != / ]] || d=
  while :; do
    f=$d/.elhaz.yaml
    if [[ -e $f || -L $f ]]; then found=$f; break; fi
    [[ -n $d && $d != "${HOME-}" ]] || break
    d=${d%/*}
  done
  [[ $found != "${_ELHAZ_PIN-}" ]] || return 0
  typeset -g _ELHAZ_PIN=$found
  \builtin eval "$(_elhaz_bin --client-timeout 2 hook zsh --pin "$found" --pinned "${_ELHAZ_PINNED-}" --use-tree "${_ELHAZ_USE_TREE-}" --stashed "${_ELHAZ_STASHED-}" --before-pin "${_ELHAZ_BEFORE_PIN-}")"
}

# The source keys this shell keeps (from `elhaz shell`, or from before the first
# `use`) go to the binary as assignments for one command: never exported, nor argv.
_elhaz_bin() {
  \builtin setopt localoptions noxtrace
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
  \builtin setopt localoptions noxtrace
  [[ ${1-} == use ]] || { _elhaz_bin "$@"; return; }
  local out
  out=$(_elhaz_bin use --eval --shell zsh "${@:2}") || return
  \builtin eval "$out"
  # An explicit NAME wins in this pin's tree; --clear ends it, a pin's own, and
  # the NAME a pin's tree would give back on leaving.
  if [[ ${2-} == --clear ]]; then unset _ELHAZ_USE_TREE _ELHAZ_PINNED _ELHAZ_BEFORE_PIN; else
    typeset -g _ELHAZ_USE_TREE=${_ELHAZ_PIN-} _ELHAZ_PINNED=
  fi
}

# Install once, first among the precmd functions.
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_elhaz_hook]} )); then
  precmd_functions=(_elhaz_hook $precmd_functions)
fi
