# A simulated IPMI-over-LAN (RMCP+, "lanplus") BMC for tests, built on pyghmi's Bmc class.
# Started by ./bmc-sim start-ipmi; not meant to be run by hand. The power state lives in a file
# (on|off) that is read before and written after every request, so a test may also change it
# behind the BMC's back; every request is appended to a log with a timestamp and the power state.
#
#   python3 bmc_sim_ipmi.py --name NAME --port PORT --user USER --log FILE --power-file FILE
#                           --pid-file FILE [--address 127.0.0.1]     (password in $BMC_SIM_PASSWORD)
import argparse
import datetime
import os
import sys
import threading
import uuid

import pyghmi.ipmi.bmc as bmc

CHASSIS_CONTROL = {
    0: "power_off",
    1: "power_on",
    2: "power_cycle",
    3: "power_reset",
    4: "pulse_diag",
    5: "power_shutdown",
}
NAMES = {
    (6, 0x01): "get_device_id",
    (6, 0x02): "bmc_cold_reset",
    (6, 0x37): "get_system_guid",
    (6, 0x48): "activate_payload",
    (6, 0x49): "deactivate_payload",
    (0, 0x01): "get_chassis_status",
    (0, 0x08): "set_boot_options",
    (0, 0x09): "get_boot_options",
    (0x2C, 0x00): "get_picmg_properties",
    (0x2C, 0x3E): "get_vso_capabilities",
}


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


class SimBmc(bmc.Bmc):
    def __init__(self, args, password):
        self.args = args
        self.lock = threading.Lock()
        self.power = "on"
        self._write_power()
        super().__init__(
            {args.user: password},
            port=args.port,
            address=args.address,
            bmcuuid=uuid.uuid5(uuid.NAMESPACE_URL, "bmc-sim:" + args.name),
        )

    # power state: the file is the truth
    def _read_power(self):
        try:
            with open(self.args.power_file) as f:
                state = f.read().strip()
            if state in ("on", "off"):
                self.power = state
        except OSError:
            pass
        return self.power

    def _write_power(self):
        tmp = self.args.power_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.power + "\n")
        os.replace(tmp, self.args.power_file)

    def log(self, what):
        with open(self.args.log, "a") as f:
            f.write(f"{now()} {what} power={self.power}\n")

    # pyghmi calls these
    def get_power_state(self):
        return self.power

    def is_active(self):
        return self.power == "on"

    def get_system_guid(self):  # newer pyghmi (PyPI) asks for it
        return self.uuid

    def cold_reset(self):
        return 0

    def _set(self, state):
        self.power = state
        self._write_power()

    def power_off(self):
        self._set("off")

    def power_on(self):
        self._set("on")

    def power_cycle(self):  # off then on again: ends on
        self._set("on")

    def power_reset(self):  # hard reset: a machine that is off stays off
        pass

    def pulse_diag(self):  # NMI: no power change
        pass

    def power_shutdown(self):  # soft off (ACPI): the simulated OS obeys at once
        self._set("off")

    def handle_raw_request(self, request, session):
        netfn, cmd = request["netfn"], request["command"]
        if (netfn, cmd) == (0, 0x02):
            data = request.get("data") or [None]
            what = "chassis_control " + CHASSIS_CONTROL.get(data[0], f"directive={data[0]}")
        else:
            what = NAMES.get((netfn, cmd), f"netfn=0x{netfn:02x} cmd=0x{cmd:02x}")
        with self.lock:
            self._read_power()
            try:
                return super().handle_raw_request(request, session)
            finally:
                self.log(what)


def log_logins(log):
    """Log each RMCP+ login (RAKP 1) and the ones that fail; best effort across pyghmi versions.

    A wrong password cannot be told here: the client sees it in our RAKP 2 and gives up, so it
    shows as a login with no request after it."""
    try:
        import pyghmi.ipmi.private.constants as constants
        import pyghmi.ipmi.private.serversession as ss

        orig1, orig3 = ss.ServerSession._got_rakp1, ss.ServerSession._got_rakp3

        def rakp1(self, data):
            try:
                user = bytes(data[28:]).decode("utf-8", "replace")
                if data[27] and user not in self.authdata:
                    log(f"login_failed unknown_user={user}")
                    # pyghmi stays silent and the client retries for 20 s; a real BMC says
                    # "unauthorized name" (RAKP 2 status 0x0d) and the client gives up at once
                    self.send_payload(
                        bytearray([data[0], 0x0D, 0, 0]) + self.clientsessionid,
                        constants.payload_types["rakp2"],
                        retry=False,
                    )
                    return None
                log(f"login user={user}")
            except Exception:
                pass
            return orig1(self, data)

        def rakp3(self, data):
            result = orig3(self, data)
            try:
                if self.ipmicallback != self.handle_client_request:
                    log("login_failed (RAKP 3 rejected)")
            except Exception:
                pass
            return result

        ss.ServerSession._got_rakp1, ss.ServerSession._got_rakp3 = rakp1, rakp3
    except Exception:
        pass


def main():
    p = argparse.ArgumentParser()
    for a in ("--name", "--user", "--log", "--power-file", "--pid-file"):
        p.add_argument(a, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--address", default="127.0.0.1")
    args = p.parse_args()
    password = os.environ.pop("BMC_SIM_PASSWORD", None)
    if password is None:
        sys.exit("bmc_sim_ipmi: BMC_SIM_PASSWORD is not set")
    sim = SimBmc(args, password)  # binds the UDP port (raises if it is taken)
    log_logins(lambda what: sim.log(what))
    sim.log(f"started udp://{args.address}:{args.port} user={args.user}")
    with open(args.pid_file + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(args.pid_file + ".tmp", args.pid_file)
    sim.listen()


if __name__ == "__main__":
    main()
