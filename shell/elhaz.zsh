# elhaz prompt hook for zsh. Install: eval "$(elhaz hook zsh)" in ~/.zshrc
#
# At each prompt (precmd), when ELHAZ_SESSION is set and ELHAZ_REFRESH_AT has
# passed, the hook asks elhaz for fresh credentials and evals them. While they are
# fresh it only compares integers: EPOCHSECONDS comes from the zsh/datetime module,
# so no process is started.

# The binary; `elhaz hook zsh` sets it to its own path before this script.
typeset -g _ELHAZ_BIN="${_ELHAZ_BIN:-elhaz}"
zmodload zsh/datetime 2>/dev/null

_elhaz_warn() {
  local now=$1 msg=$2 expired=$3
  if [[ $expired == 1 ]]; then
    if [[ "${_ELHAZ_WARNED_EXPIRED-}" != "${ELHAZ_SESSION}:${ELHAZ_EXPIRES_AT-}" ]]; then
      typeset -g _ELHAZ_WARNED_EXPIRED="${ELHAZ_SESSION}:${ELHAZ_EXPIRES_AT-}"
      typeset -g _ELHAZ_WARNED_AT=$now
      \builtin print -r -u2 -- "elhaz: the credentials of $ELHAZ_SESSION have expired: $msg"
    fi
    return 0
  fi
  if [[ "${_ELHAZ_WARNED_SESSION-}" != "$ELHAZ_SESSION" ]] || (( now >= ${_ELHAZ_WARNED_AT:-0} + 300 )); then
    typeset -g _ELHAZ_WARNED_SESSION=$ELHAZ_SESSION
    typeset -g _ELHAZ_WARNED_AT=$now
    \builtin print -r -u2 -- "elhaz: cannot refresh $ELHAZ_SESSION, keeping the current credentials: $msg"
  fi
}

_elhaz_refresh() {
  local now=$1 old=${ELHAZ_EXPIRES_AT-} out
  if out=$(\command "$_ELHAZ_BIN" export "$ELHAZ_SESSION" -f env --shell zsh 2>&1) &&
    [[ $out == "unset "* ]]; then
    \builtin eval "$out"
    if [[ "${ELHAZ_EXPIRES_AT-}" == "$old" ]]; then
      typeset -g _ELHAZ_RETRY_AT=$((now + 60))
      _elhaz_warn "$now" "no newer credentials were served" 0
    else
      typeset -g _ELHAZ_RETRY_AT=0
    fi
  else
    typeset -g _ELHAZ_RETRY_AT=$((now + 60))
    out=${out#elhaz: }
    _elhaz_warn "$now" "${out%%$'\n'*}" "$(( now >= ${ELHAZ_EXPIRES_AT:-0} ? 1 : 0 ))"
  fi
}

_elhaz_hook() {
  local last=$?
  if [[ -n "${ELHAZ_SESSION-}" ]]; then
    local now=${EPOCHSECONDS:-0} at=${ELHAZ_REFRESH_AT-}
    if [[ ! $at =~ '^[0-9]+$' ]]; then
      at=${ELHAZ_EXPIRES_AT-0}
      [[ $at =~ '^[0-9]+$' ]] || at=0
      at=$((at - 600))
    fi
    if (( now >= at && now >= ${_ELHAZ_RETRY_AT:-0} )); then
      _elhaz_refresh "$now"
    fi
  fi
  return $last
}

# `elhaz use NAME` and `elhaz use --clear` change this shell; the rest goes to
# the binary.
elhaz() {
  if [[ "${1-}" == use ]]; then
    shift
    local out
    out=$(\command "$_ELHAZ_BIN" use --eval --shell zsh "$@") || return $?
    \builtin eval "$out"
    typeset -g _ELHAZ_RETRY_AT=0
  else
    \command "$_ELHAZ_BIN" "$@"
  fi
}

# Install once, first among the precmd functions.
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_elhaz_hook]} )); then
  precmd_functions=(_elhaz_hook $precmd_functions)
fi
