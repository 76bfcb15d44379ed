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
  # No xtrace while credentials are about (it would print them); local to here.
  \builtin emulate -L zsh
  \builtin setopt noxtrace
  local now=$1 old=${ELHAZ_EXPIRES_AT-} min=1 out rc=0 expired=0
  # Ask for credentials that outlive these: the daemon refreshes unless it already
  # has newer ones, whatever its own windows are.
  if [[ $old == <-> && ${#old} -le 18 ]] && (( old > now )); then
    min=$((old - now + 1))
  fi
  # No other attempt for a minute unless this one succeeds: an interrupted one
  # (Ctrl-C on a hung daemon) must not start again at the very next prompt.
  typeset -g _ELHAZ_RETRY_AT=$((now + 60))
  # A short wait: the daemon refreshes ahead, so a slow answer can wait for the
  # next attempt rather than hold the prompt.
  out=$(_elhaz_bin --client-timeout 2 export "$ELHAZ_SESSION" -f env --shell zsh --min-remaining "$min" 2>&1) || rc=$?
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

# The variables `elhaz use` sets or unsets. The first `use` saves their values in
# shell variables that are not exported; `use --clear` puts them back (or unsets
# those that were unset), as a venv's deactivate does.
typeset -g _ELHAZ_USE_VARS='AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION AWS_CREDENTIAL_FILE AWS_SDK_LOAD_CONFIG AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_REGION AWS_DEFAULT_REGION ELHAZ_SESSION ELHAZ_EXPIRES_AT ELHAZ_REFRESH_AT ELHAZ_SOURCE_AWS_PROFILE ELHAZ_SOURCE_AWS_DEFAULT_PROFILE ELHAZ_SOURCE_AWS_REGION ELHAZ_SOURCE_AWS_DEFAULT_REGION ELHAZ_SOURCE_AWS_CONFIG_FILE ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE ELHAZ_SOURCE_AWS_ROLE_ARN ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME ELHAZ_CONTEXT_REF'

# Saves what `use` is about to change. Outside a session the keys in the
# environment are the source: they are kept too, for the binary (_elhaz_bin).
_elhaz_stash() {
  \builtin emulate -L zsh
  \builtin setopt noxtrace
  local v o
  for v in ${=_ELHAZ_USE_VARS}; do
    o=_ELHAZ_OLD_$v
    \builtin unset $o
    [[ -z ${(P)v+x} ]] || \builtin typeset -g "$o=${(P)v}"
  done
  typeset -g _ELHAZ_STASHED=1
  if [[ -z ${_ELHAZ_SRC-} && -z ${ELHAZ_SESSION-} ]]; then
    typeset -g _ELHAZ_SRC=use
    typeset -g _ELHAZ_SRC_AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID-}
    typeset -g _ELHAZ_SRC_AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY-}
    typeset -g _ELHAZ_SRC_AWS_SESSION_TOKEN=${AWS_SESSION_TOKEN-}
  fi
}

# Drops the saved values; with 1, puts them back first.
_elhaz_unstash() {
  \builtin emulate -L zsh
  \builtin setopt noxtrace
  local v o
  for v in ${=_ELHAZ_USE_VARS}; do
    o=_ELHAZ_OLD_$v
    if [[ $1 == 1 ]]; then
      if [[ -n ${(P)o+x} ]]; then \builtin export "$v=${(P)o}"; else \builtin unset $v; fi
    fi
    \builtin unset $o
  done
  \builtin unset _ELHAZ_STASHED
  if [[ ${_ELHAZ_SRC-} == use ]]; then
    \builtin unset _ELHAZ_SRC _ELHAZ_SRC_AWS_ACCESS_KEY_ID _ELHAZ_SRC_AWS_SECRET_ACCESS_KEY _ELHAZ_SRC_AWS_SESSION_TOKEN
  fi
}

# Runs the binary. The source keys this shell keeps (from before `use`, or handed
# over by `elhaz shell`) go to it as assignments for this one command only: never
# exported, never in argv.
_elhaz_bin() {
  \builtin setopt localoptions noxtrace
  if [[ -n ${_ELHAZ_SRC-} ]]; then
    ELHAZ_SOURCE_AWS_ACCESS_KEY_ID=${_ELHAZ_SRC_AWS_ACCESS_KEY_ID-} \
    ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY=${_ELHAZ_SRC_AWS_SECRET_ACCESS_KEY-} \
    ELHAZ_SOURCE_AWS_SESSION_TOKEN=${_ELHAZ_SRC_AWS_SESSION_TOKEN-} \
      \command "$_ELHAZ_BIN" "$@"
  else
    \command "$_ELHAZ_BIN" "$@"
  fi
}

# `elhaz use NAME` and `elhaz use --clear` change this shell; the rest goes to
# the binary. No xtrace inside (it would print the credentials); local to here.
elhaz() {
  \builtin setopt localoptions noxtrace
  if [[ "${1-}" != use ]]; then
    _elhaz_bin "$@"
    return
  fi
  shift
  local out a clear=0 new=0 rc=0
  for a in "$@"; do [[ $a != --clear ]] || clear=1; done
  if (( ! clear )) && [[ -z ${_ELHAZ_STASHED-} ]]; then
    _elhaz_stash
    new=1
  fi
  out=$(_elhaz_bin use --eval --shell zsh "$@") || rc=$?
  if (( rc != 0 )); then
    (( ! new )) || _elhaz_unstash 0
    return $rc
  fi
  if (( clear )) && [[ -n ${_ELHAZ_STASHED-} ]]; then
    _elhaz_unstash 1
  else
    \builtin eval "$out"
  fi
  typeset -g _ELHAZ_RETRY_AT=0
}

# Install once, first among the precmd functions.
typeset -ag precmd_functions
if (( ! ${precmd_functions[(I)_elhaz_hook]} )); then
  precmd_functions=(_elhaz_hook $precmd_functions)
fi
