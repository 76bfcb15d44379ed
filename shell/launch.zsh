# The files of the private ZDOTDIR that `elhaz shell` starts zsh with. The binary
# puts the sections below together into .zshenv, .zprofile and .zshrc.
# elhaz-section: seed
# elhaz shell: the hook's copy of your source keys (from the pipe in $_elhaz_fd).
builtin source /dev/fd/$_elhaz_fd
exec {_elhaz_fd}<&-
unset _elhaz_fd
# elhaz-section: passthrough
# elhaz shell: runs your own file ($_elhaz_file) from your ZDOTDIR (which it may
# change), then points ZDOTDIR back here for the next file.
_elhaz_zd=$ZDOTDIR
ZDOTDIR=${_ELHAZ_USER_ZDOTDIR:-$HOME}
[[ -f $ZDOTDIR/$_elhaz_file ]] && builtin source $ZDOTDIR/$_elhaz_file
export _ELHAZ_USER_ZDOTDIR=$ZDOTDIR
ZDOTDIR=$_elhaz_zd
unset _elhaz_zd _elhaz_file
# elhaz-section: zshrc
# elhaz shell: your own .zshrc, then the elhaz hook.
_elhaz_zd=$ZDOTDIR
if [[ -n ${_ELHAZ_USER_ZDOTDIR-} ]]; then ZDOTDIR=$_ELHAZ_USER_ZDOTDIR; else unset ZDOTDIR; fi
unset _ELHAZ_USER_ZDOTDIR
[[ -f ${ZDOTDIR:-$HOME}/.zshrc ]] && builtin source ${ZDOTDIR:-$HOME}/.zshrc
# elhaz-section: prompt
PROMPT="${ELHAZ_SESSION:+(${ELHAZ_SESSION}) }${PROMPT-}"
# elhaz-section: cleanup
if zmodload -F zsh/files b:zf_rm 2>/dev/null; then zf_rm -rf -- $_elhaz_zd; else command rm -rf -- $_elhaz_zd; fi
unset _elhaz_zd
