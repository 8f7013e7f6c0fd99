"""Start the mazewb workbench on the bundled agent: ``python app.py [--host H] [--port P]``."""

from mazewb.cli import main

if __name__ == "__main__":
    main(["serve", *__import__("sys").argv[1:]])
