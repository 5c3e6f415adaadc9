#!/usr/bin/python3
"""tests/image/guestfwd.py PORT -- one guest connection to 127.0.0.1:PORT.

qemu's user network runs this once per connection the appliance opens to
a guestfwd address (guestfwd=tcp:10.0.2.2:25-cmd:guestfwd.py PORT), with
the connection on stdin and stdout; it copies bytes both ways until either
side closes.  So the appliance's SMTP client reaches a real server on this
machine's loopback, and nothing else (the network is restrict=on).
"""

import os
import selectors
import socket
import sys


def main():
    port = int(sys.argv[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "guest")
    sel.register(sock, selectors.EVENT_READ, "host")
    open_ends = 2
    while open_ends:
        # An idle connection ends after 10 minutes: never a stray process.
        events = sel.select(600)
        if not events:
            break
        for key, _ in events:
            if key.data == "guest":
                data = os.read(0, 65536)
                if not data:
                    sel.unregister(0)
                    sock.shutdown(socket.SHUT_WR)
                    open_ends -= 1
                else:
                    sock.sendall(data)
            else:
                data = sock.recv(65536)
                if not data:
                    sel.unregister(sock)
                    open_ends = 0
                else:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(1, view):]
    sock.close()


if __name__ == "__main__":
    main()
