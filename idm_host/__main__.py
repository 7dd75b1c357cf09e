try:
    from .cli import main, quiet_exit
except KeyboardInterrupt:  # Ctrl-C while the program loads: nothing to clean up yet
    raise SystemExit(130) from None

status = main()
quiet_exit()
raise SystemExit(status)
