# Writes Python tracebacks into a log file with the logging module, as an
# application does: python3 tracebacks.py FILE. Five records, three of them
# with a traceback (one chained with "from", one raised while handling
# another).
import logging
import sys

logging.basicConfig(filename=sys.argv[1], level=logging.INFO,
                    format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("app")
log.info("starting")
try:
    1 / 0
except ZeroDivisionError:
    log.exception("division failed")


def parse(s):
    try:
        return int(s)
    except ValueError as e:
        raise RuntimeError("bad config") from e


try:
    parse("x")
except RuntimeError:
    log.exception("config failed")
try:
    {}["k"]
except KeyError:
    try:
        None.x
    except AttributeError:
        log.exception("nested failed")
log.info("done")
