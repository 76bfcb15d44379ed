# elhaz prompt hook for fish. Install: elhaz hook fish | source
# in ~/.config/fish/config.fish
#
# Before each prompt, when ELHAZ_SESSION is set and ELHAZ_REFRESH_AT has passed,
# the hook asks elhaz for fresh credentials and sources them. While they are fresh
# it only compares integers: the time comes from the `path` builtin (the mtime of /
# plus its age), so no process is started.

# The binary; `elhaz hook fish` sets it to its own path before this script.
set -q _ELHAZ_BIN; or set -g _ELHAZ_BIN elhaz

function _elhaz_now --description 'unix seconds, without a fork'
    set -l mtime (builtin path mtime /)
    set -l age (builtin path mtime --relative /)
    math "$mtime + $age"
end

function _elhaz_warn --argument-names now msg expired
    if test "$expired" = 1
        if test "$_elhaz_warned_expired" != "$ELHAZ_SESSION:$ELHAZ_EXPIRES_AT"
            set -g _elhaz_warned_expired "$ELHAZ_SESSION:$ELHAZ_EXPIRES_AT"
            set -g _elhaz_warned_at $now
            printf 'elhaz: the credentials of %s have expired: %s\n' $ELHAZ_SESSION $msg >&2
        end
        return 0
    end
    set -q _elhaz_warned_at; or set -g _elhaz_warned_at 0
    if test "$_elhaz_warned_session" != "$ELHAZ_SESSION"; or test $now -ge (math $_elhaz_warned_at + 300)
        set -g _elhaz_warned_session $ELHAZ_SESSION
        set -g _elhaz_warned_at $now
        printf 'elhaz: cannot refresh %s, keeping the current credentials: %s\n' $ELHAZ_SESSION $msg >&2
    end
end

function _elhaz_refresh --argument-names now
    # No tracing while credentials are about (it would print them); local to here.
    set -l fish_trace
    set -l old "$ELHAZ_EXPIRES_AT"
    set -l valid 0
    string match -qr '^[0-9]{1,18}$' -- "$old"; and set valid 1
    # Ask for credentials that outlive these: the daemon refreshes unless it already
    # has newer ones, whatever its own windows are.
    set -l min 1
    if test $valid = 1; and test $old -gt $now
        set min (math $old - $now + 1)
    end
    # No other attempt for a minute unless this one succeeds: an interrupted one
    # (Ctrl-C on a hung daemon) must not start again at the very next prompt.
    set -g _elhaz_retry_at (math $now + 60)
    # A short wait: the daemon refreshes ahead, so a slow answer can wait for the
    # next attempt rather than hold the prompt.
    set -l out (_elhaz_bin --client-timeout 2 export $ELHAZ_SESSION -f env --shell fish --min-remaining $min 2>&1)
    set -l rc $status
    # What elhaz said on stderr on the way (that it started the daemon, say) comes
    # before the code.
    set -l code
    for line in $out
        if set -q code[1]; or string match -q 'set -e *' -- $line
            set -a code $line
        end
    end
    if test $rc = 0; and set -q code[1]
        printf '%s\n' $code | source
        if test "$ELHAZ_EXPIRES_AT" = "$old"
            # Nothing newer to be had yet: wait the minute before asking again.
            _elhaz_warn $now "no newer credentials were served" 0
        else
            set -g _elhaz_retry_at 0
        end
    else
        # The reason is elhaz's last "elhaz: " line (an error's hint follows it).
        set -l reasons (string match -r '^elhaz: .*' -- $out)
        set -l reason "elhaz export exited with status $rc"
        if set -q reasons[1]
            set reason (string replace -r '^elhaz: ' '' -- $reasons[-1])
        else if set -q out[1]; and test -n "$out[1]"
            set reason $out[1]
        end
        set -l expired 0
        if test $valid = 1; and test $now -ge $old
            set expired 1
        end
        _elhaz_warn $now $reason $expired
    end
end

function _elhaz_hook --on-event fish_prompt
    set -q ELHAZ_SESSION; or return
    test -n "$ELHAZ_SESSION"; or return
    # A session served by `--server` refreshes through its endpoint: nothing to do.
    set -q AWS_CONTAINER_AUTHORIZATION_TOKEN; and return
    set -l now (_elhaz_now)
    # Only plain decimal numbers count.
    set -l at "$ELHAZ_REFRESH_AT"
    if not string match -qr '^[0-9]{1,18}$' -- "$at"
        set at 0
        if string match -qr '^[0-9]{1,18}$' -- "$ELHAZ_EXPIRES_AT"
            set at (math $ELHAZ_EXPIRES_AT - 600)
        end
    end
    set -q _elhaz_retry_at; or set -g _elhaz_retry_at 0
    if test $now -ge $at; and test $now -ge $_elhaz_retry_at
        _elhaz_refresh $now
    end
end

# The variables `elhaz use` sets or unsets. The first `use` saves their values in
# variables that are not exported; `use --clear` puts them back (or erases those
# that were not set), as a venv's deactivate does.
set -g _elhaz_use_vars AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_CREDENTIAL_EXPIRATION AWS_CREDENTIAL_FILE AWS_SDK_LOAD_CONFIG AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_AUTHORIZATION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_REGION AWS_DEFAULT_REGION ELHAZ_SESSION ELHAZ_EXPIRES_AT ELHAZ_REFRESH_AT ELHAZ_SOURCE_AWS_PROFILE ELHAZ_SOURCE_AWS_DEFAULT_PROFILE ELHAZ_SOURCE_AWS_REGION ELHAZ_SOURCE_AWS_DEFAULT_REGION ELHAZ_SOURCE_AWS_CONFIG_FILE ELHAZ_SOURCE_AWS_SHARED_CREDENTIALS_FILE ELHAZ_SOURCE_AWS_ROLE_ARN ELHAZ_SOURCE_AWS_WEB_IDENTITY_TOKEN_FILE ELHAZ_SOURCE_AWS_ROLE_SESSION_NAME ELHAZ_CONTEXT_REF

# Saves what `use` is about to change. Outside a session the keys in the
# environment are the source: they are kept too, for the binary (_elhaz_bin).
function _elhaz_stash
    set -l fish_trace
    for v in $_elhaz_use_vars
        set -e _elhaz_old_$v
        if set -q $v
            set -g _elhaz_old_$v $$v
        end
    end
    set -g _elhaz_stashed 1
    if not set -q _elhaz_src; and test -z "$ELHAZ_SESSION"
        set -g _elhaz_src use
        set -g _elhaz_src_AWS_ACCESS_KEY_ID "$AWS_ACCESS_KEY_ID"
        set -g _elhaz_src_AWS_SECRET_ACCESS_KEY "$AWS_SECRET_ACCESS_KEY"
        set -g _elhaz_src_AWS_SESSION_TOKEN "$AWS_SESSION_TOKEN"
    end
end

# Drops the saved values; with 1, puts them back first.
function _elhaz_unstash --argument-names restore
    set -l fish_trace
    for v in $_elhaz_use_vars
        set -l o _elhaz_old_$v
        if test "$restore" = 1
            if set -q $o
                set -gx $v $$o
            else
                set -e $v
            end
        end
        set -e $o
    end
    set -e _elhaz_stashed
    if test "$_elhaz_src" = use
        set -e _elhaz_src _elhaz_src_AWS_ACCESS_KEY_ID _elhaz_src_AWS_SECRET_ACCESS_KEY _elhaz_src_AWS_SESSION_TOKEN
    end
    true
end

# Runs the binary. The source keys this shell keeps (from before `use`, or handed
# over by `elhaz shell`) go to it as assignments for this one command only: never
# exported, never in argv.
function _elhaz_bin
    set -l fish_trace
    if set -q _elhaz_src
        ELHAZ_SOURCE_AWS_ACCESS_KEY_ID="$_elhaz_src_AWS_ACCESS_KEY_ID" ELHAZ_SOURCE_AWS_SECRET_ACCESS_KEY="$_elhaz_src_AWS_SECRET_ACCESS_KEY" ELHAZ_SOURCE_AWS_SESSION_TOKEN="$_elhaz_src_AWS_SESSION_TOKEN" command $_ELHAZ_BIN $argv
    else
        command $_ELHAZ_BIN $argv
    end
end

# `elhaz use NAME` and `elhaz use --clear` change this shell; the rest goes to
# the binary. No tracing inside (it would print the credentials).
function elhaz --description 'elhaz, with `use` acting on this shell'
    set -l fish_trace
    if test "$argv[1]" != use
        _elhaz_bin $argv
        return
    end
    set -l clear 0
    contains -- --clear $argv[2..-1]; and set clear 1
    set -l new 0
    if test $clear = 0; and not set -q _elhaz_stashed
        _elhaz_stash
        set new 1
    end
    set -l out (_elhaz_bin use --eval --shell fish $argv[2..-1])
    set -l rc $status
    if test $rc != 0
        test $new = 0; or _elhaz_unstash 0
        return $rc
    end
    if test $clear = 1; and set -q _elhaz_stashed
        _elhaz_unstash 1
    else
        printf '%s\n' $out | source
    end
    set -g _elhaz_retry_at 0
end
