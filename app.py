"""Start the chat page: python app.py [--corpus corpus] [--index index] [--host 127.0.0.1] [--port 7860]."""

import sys

from haitirag.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["serve", *sys.argv[1:]]))
