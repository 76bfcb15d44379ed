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
}

# Install once, first among the precmd functions.
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_elhaz_hook]} )); then
  precmd_functions=(_elhaz_hook $precmd_functions)
fi
