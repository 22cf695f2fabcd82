"""`python -m pipeline.tools.cli`: how the demo, the measurements and the tests start a worker or a command."""

from pipeline.tools.cli import main

if __name__ == "__main__":
    main()
