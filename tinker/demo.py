"""`make demo`: train and sample a tiny model on the embedded server."""

from tinker import __version__


def main() -> None:
    print(f"tinker-sync {__version__}")


if __name__ == "__main__":
    main()
