# elhaz prompt hook for bash. Install: eval "$(elhaz hook bash)" in ~/.bashrc
#
# At each prompt, when ELHAZ_SESSION is set and ELHAZ_REFRESH_AT has passed, the
# hook asks elhaz for fresh credentials and evals them. While they are fresh it
# only compares integers with builtins: no process is started.
# shellcheck shell=bash
# Braces only where an expansion needs them (SC2250 is a matter of taste); the
# other optional checks of shellcheck hold.
# shellcheck disable=SC2250

# The binary; `elhaz hook bash` sets it to its own path before this script.
_ELHAZ_BIN="${_ELHAZ_BIN:-elhaz}"

# Prints the current time (unix seconds) into the variable named $1, without a fork.
_elhaz_now() {
  if [[ -n "${EPOCHSECONDS-}" ]]; then
    \builtin printf -v "$1" '%s' "$EPOCHSECONDS"
  else
    \builtin printf -v "$1" '%(%s)T' -1
  fi
}

# One warning line, at most once per 5 minutes per session, and once more when
# the credentials have actually expired.
_elhaz_warn() {
  local now=$1 msg=$2 expired=$3
  if [[ $expired == 1 ]]; then
    if [[ "${_ELHAZ_WARNED_EXPIRED-}" != "${ELHAZ_SESSION}:${ELHAZ_EXPIRES_AT-}" ]]; then
      _ELHAZ_WARNED_EXPIRED="${ELHAZ_SESSION}:${ELHAZ_EXPIRES_AT-}"
      _ELHAZ_WARNED_AT=$now
      \builtin printf 'elhaz: the credentials of %s have expired: %s\n' "$ELHAZ_SESSION" "$msg" >&2
    fi
    return 0
  fi
  if [[ "${_ELHAZ_WARNED_SESSION-}" != "$ELHAZ_SESSION" ]] || ((now >= ${_ELHAZ_WARNED_AT:-0} + 300)); then
    _ELHAZ_WARNED_SESSION=$ELHAZ_SESSION
    _ELHAZ_WARNED_AT=$now
    \builtin printf 'elhaz: cannot refresh %s, keeping the current credentials: %s\n' "$ELHAZ_SESSION" "$msg" >&2
  fi
}

_elhaz_refresh() {
  local now=$1 old=${ELHAZ_EXPIRES_AT-} min=1 out rc=0
  # Ask for credentials that outlive these: the daemon refreshes unless it already
  # has newer ones, whatever its own windows are.
  if [[ -n $old && $old != *[!0-9]* && ${#old} -le 18 ]] && ((10#$old > now)); then
    min=$((10#$old - now + 1))
  fi
  # No other attempt for a minute unless this one succeeds: an interrupted one
  # (Ctrl-C on a hung daemon) must not start again at the very next prompt.
  _ELHAZ_RETRY_AT=$((now + 60))
  # A short wait: the daemon refreshes ahead, so a slow answer can wait for the
  # next attempt rather than hold the prompt.
  out=$(_elhaz_bin --client-timeout 2 export "$ELHAZ_SESSION" -f env --shell bash --min-remaining "$min" 2>&1) || rc=$?
  # What elhaz said on stderr on the way (that it started the daemon, say) comes
  # before the code.
  if [[ $out != "unset "* && $out == *$'\n'"unset "* ]]; then
    out="unset ${out#*$'\n'unset }"
  fi
  if ((rc == 0)) && [[ $out == "unset "* ]]; then
    \builtin eval "$out"
    if [[ "${ELHAZ_EXPIRES_AT-}" == "$old" ]]; then
      # Nothing newer to be had yet: wait the minute before asking again.
      _elhaz_warn "$now" "no newer credentials were served" 0
    else
      _ELHAZ_RETRY_AT=0
    fi
  else
    # The reason is elhaz's last "elhaz: " line (an error's hint follows it).
    out=${out##*elhaz: }
    out=${out%%$'\n'*}
    [[ -n $out ]] || out="elhaz export exited with status $rc"
    local expired=0
    [[ -n $old && $old != *[!0-9]* && ${#old} -le 18 ]] && ((now >= 10#$old)) && expired=1
    _elhaz_warn "$now" "$out" "$expired"
  fi
}

_elhaz_hook() {
  local status=$?
  # A session served by `--server` refreshes through its endpoint: nothing to do.
  if [[ -n "${ELHAZ_SESSION-}" && -z "${AWS_CONTAINER_AUTHORIZATION_TOKEN-}" ]]; then
    local now=${EPOCHSECONDS-} at=${ELHAZ_REFRESH_AT-}
    [[ -n $now ]] || _elhaz_now now
    # Only plain decimal numbers count (10#: leading zeros are not octal); globs,
    # as a regex costs more than the rest of the hook.
    if [[ -n $at && $at != *[!0-9]* && ${#at} -le 18 ]]; then
      at=$((10#$at))
    else
      at=${ELHAZ_EXPIRES_AT-}
      if [[ -n $at && $at != *[!0-9]* && ${#at} -le 18 ]]; then at=$((10#$at - 600)); else at=0; fi
    fi
    if ((now >= at && now >= ${_ELHAZ_RETRY_AT:-0})); then
      # No xtrace while credentials are about (set -x would print them).
      local xtrace=$-
      { \builtin set +x; } 2>/dev/null
      _elhaz_refresh "$now"
      [[ $xtrace != *x* ]] || \builtin set -x
    fi
  fi
  return "$status"
}

# The variables `elhaz use` sets or unsets. The first `use` saves their values in
# shell variables that are not exported; `use --clear` puts them back (or unsets
# those that were unset), as a venv's deactivate does.
_ELHAZ_USE_VARS='AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION AWS_CREDENTIAL_FILE AWS_SDK_LOAD_CONFIG AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_REGION AWS_DEFAULT_REGION ELHAZ_SESSION ELHAZ_EXPIRES_AT ELHAZ_REFRESH_AT ELHAZ_SOURCE_AWS_PROFILE ELHAZ_SOURCE_AWS_DEFAULT_PROFILE ELHAZ_SOURCE_AWS_REGION ELHAZ_SOURCE_AWS_DEFAULT_REGION ELHAZ_SOURCE_AWS_CONFIG_FILE ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE ELHAZ_SOURCE_AWS_ROLE_ARN ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME ELHAZ_CONTEXT_REF'

# Saves what `use` is about to change. Outside a session the keys in the
# environment are the source: they are kept too, for the binary (_elhaz_bin).
_elhaz_stash() {
  local v o
  for v in $_ELHAZ_USE_VARS; do
    o=_ELHAZ_OLD_$v
    \builtin unset "$o"
    [[ -z ${!v+x} ]] || \builtin printf -v "$o" '%s' "${!v}"
  done
  _ELHAZ_STASHED=1
  if [[ -z ${_ELHAZ_SRC-} && -z ${ELHAZ_SESSION-} ]]; then
    _ELHAZ_SRC=use
    _ELHAZ_SRC_AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID-}
    _ELHAZ_SRC_AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY-}
    _ELHAZ_SRC_AWS_SESSION_TOKEN=${AWS_SESSION_TOKEN-}
  fi
}

# Drops the saved values; with 1, puts them back first.
_elhaz_unstash() {
  local v o
  for v in $_ELHAZ_USE_VARS; do
    o=_ELHAZ_OLD_$v
    if [[ $1 == 1 ]]; then
      if [[ -n ${!o+x} ]]; then \builtin export "$v=${!o}"; else \builtin unset "$v"; fi
    fi
    \builtin unset "$o"
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
  if [[ -n ${_ELHAZ_SRC-} ]]; then
    ELHAZ_SOURCE_AWS_ACCESS_KEY_ID=${_ELHAZ_SRC_AWS_ACCESS_KEY_ID-} \
      ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY=${_ELHAZ_SRC_AWS_SECRET_ACCESS_KEY-} \
      ELHAZ_SOURCE_AWS_SESSION_TOKEN=${_ELHAZ_SRC_AWS_SESSION_TOKEN-} \
      \command "$_ELHAZ_BIN" "$@"
  else
    \command "$_ELHAZ_BIN" "$@"
  fi
}

_elhaz_use() {
  local out a clear=0 new=0 rc=0
  for a in "$@"; do [[ $a != --clear ]] || clear=1; done
  if ((!clear)) && [[ -z ${_ELHAZ_STASHED-} ]]; then
    _elhaz_stash
    new=1
  fi
  out=$(_elhaz_bin use --eval --shell bash "$@") || rc=$?
  if ((rc != 0)); then
    ((!new)) || _elhaz_unstash 0
    return "$rc"
  fi
  if ((clear)) && [[ -n ${_ELHAZ_STASHED-} ]]; then
    _elhaz_unstash 1
  else
    \builtin eval "$out"
  fi
  _ELHAZ_RETRY_AT=0
}

# `elhaz use NAME` and `elhaz use --clear` change this shell; the rest goes to
# the binary. No xtrace inside: set -x would print the credentials.
elhaz() {
  local xtrace=$- rc=0
  { \builtin set +x; } 2>/dev/null
  if [[ "${1-}" == use ]]; then
    shift
    _elhaz_use "$@" || rc=$?
  else
    _elhaz_bin "$@" || rc=$?
  fi
  [[ $xtrace != *x* ]] || \builtin set -x
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
