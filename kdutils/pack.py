"""``python -m kdutils.pack export|import FILE``: the teacher-pack command, kept at this address
for the README and the classroom; the code is in :mod:`kdutils.classroom.pack`."""
import sys

from .classroom.pack import main

if __name__ == "__main__":
    sys.exit(main())
