"""What a start needs: the launch of each service (argv, env, restart inputs), the checks before it
(a launchable binary, a free port), the files a launcher leaves in `.router/run/`, log rotation."""
