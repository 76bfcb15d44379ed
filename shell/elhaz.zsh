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
  \builtin emulate -L zsh
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
  \builtin emulate -L zsh
  local now=$1 old=${ELHAZ_EXPIRES_AT-} min=1 out rc=0 expired=0
  # Ask for credentials that outlive these: the daemon refreshes unless it already
  # has newer ones, whatever its own windows are.
  if [[ $old == <-> && ${#old} -le 18 ]] && (( old > now )); then
    min=$((old - now + 1))
  fi
  # No other attempt for a minute unless this one succeeds: an interrupted one
  # (Ctrl-C on a hung daemon) must not start again at the very next prompt.
  typeset -g _ELHAZ_RETRY_AT=$((now + 60))
  out=$(\command "$_ELHAZ_BIN" export "$ELHAZ_SESSION" -f env --shell zsh --min-remaining "$min" 2>&1) || rc=$?
  # What elhaz said on stderr on the way (that it started the daemon, say) comes
  # before the code.
  if [[ $out != "unset "* && $out == *$'\n'"unset "* ]]; then
    out="unset ${out#*$'\n'unset }"
  fi
  if (( rc == 0 )) && [[ $out == "unset "* ]]; then
    \builtin eval "$out"
    if [[ "${ELHAZ_EXPIRES_AT-}" == "$old" ]]; then
      # Nothing newer to be had yet: wait the minute before asking again.
      _elhaz_warn "$now" "no newer credentials were served" 0
    else
      typeset -g _ELHAZ_RETRY_AT=0
    fi
  else
    # The reason is elhaz's last "elhaz: " line (an error's hint follows it).
    out=${out##*elhaz: }
    out=${out%%$'\n'*}
    [[ -n $out ]] || out="elhaz export exited with status $rc"
    [[ $old == <-> && ${#old} -le 18 ]] && (( now >= old )) && expired=1
    _elhaz_warn "$now" "$out" "$expired"
  fi
}

_elhaz_hook() {
  local last=$?
  # A session served by `--server` refreshes through its endpoint: nothing to do.
  if [[ -n "${ELHAZ_SESSION-}" && -z "${AWS_CONTAINER_AUTHORIZATION_TOKEN-}" ]]; then
    \builtin emulate -L zsh
    # Only plain decimal numbers count (a glob, not =~: no module, no $MATCH).
    local now=${EPOCHSECONDS:-0} at=${ELHAZ_REFRESH_AT-}
    if [[ $at != <-> || ${#at} -gt 18 ]]; then
      at=${ELHAZ_EXPIRES_AT-}
      if [[ $at == <-> && ${#at} -le 18 ]]; then at=$((at - 600)); else at=0; fi
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
