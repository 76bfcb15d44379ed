complete --keep-order --exclusive --command elhaz --arguments "(COMPLETE=fish elhaz -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
