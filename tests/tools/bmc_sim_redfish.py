# A simulated Redfish BMC for tests: sushy-tools' emulator with its fake driver, one system, HTTPS
# with basic auth. Started by ./bmc-sim start-redfish; not meant to be run by hand. Compared with a
# plain `sushy-emulator --fake`, power changes apply at once (no random 1-11 s delay), PowerCycle,
# Nmi and PushPowerButton work, the power state lives in a file (on|off) that is read before every
# request (a test may change it behind the BMC's back), and every request is appended to a log with
# a timestamp, the HTTP status and the power state.
#
#   python3 bmc_sim_redfish.py --name NAME --port PORT --user USER --log FILE --power-file FILE
#                              --pid-file FILE --cert FILE --key FILE --state-dir DIR
#                              [--address 127.0.0.1]     (password in $BMC_SIM_PASSWORD)
import argparse
import datetime
import io
import json
import logging
import os
import ssl
import sys
import threading
import uuid

import bcrypt


def now():
    return datetime.datetime.now().astimezone().isoformat(timespec="milliseconds")


def main():
    p = argparse.ArgumentParser()
    for a in (
        "--name",
        "--user",
        "--log",
        "--power-file",
        "--pid-file",
        "--cert",
        "--key",
        "--state-dir",
    ):
        p.add_argument(a, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--address", default="127.0.0.1")
    args = p.parse_args()
    password = os.environ.pop("BMC_SIM_PASSWORD", None)
    if password is None:
        sys.exit("bmc_sim_redfish: BMC_SIM_PASSWORD is not set")

    os.makedirs(args.state_dir, exist_ok=True)
    htpasswd = os.path.join(args.state_dir, "htpasswd")
    digest = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    with open(htpasswd, "w") as f:
        f.write(f"{args.user}:{digest}\n")
    system_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "bmc-sim:" + args.name))
    lock = threading.RLock()
    power = {"state": "on"}

    def write_power(state):
        power["state"] = state
        with open(args.power_file + ".tmp", "w") as f:
            f.write(state + "\n")
        os.replace(args.power_file + ".tmp", args.power_file)

    def read_power():
        try:
            with open(args.power_file) as f:
                state = f.read().strip()
            if state in ("on", "off"):
                power["state"] = state
        except OSError:
            pass
        return power["state"]

    def log(what):
        with lock, open(args.log, "a") as f:
            f.write(f"{now()} {what} power={power['state']}\n")

    write_power("on")

    # sushy-tools reads its config when the module is imported; the state dir must not be shared
    os.environ.pop("SUSHY_EMULATOR_CONFIG", None)
    from sushy_tools import error
    from sushy_tools.emulator import main as emu
    from sushy_tools.emulator.resources.systems import fakedriver

    fake = fakedriver.FakeDriver
    orig_get = fake._get

    def _get(self, identity):
        system = orig_get(self, identity)
        want = "On" if read_power() == "on" else "Off"
        if system.get("power_state") != want or system.get("pending_power"):
            self._update(system, power_state=want, pending_power=None)
        return system

    def set_power_state(self, identity, state):
        with lock:
            system = self._get(identity)
            cur = system["power_state"]
            if state in ("On", "ForceOn"):
                new = "On"
            elif state in ("ForceOff", "GracefulShutdown"):
                new = "Off"
            elif state in ("ForceRestart", "GracefulRestart", "PowerCycle"):
                new = "On"
            elif state == "PushPowerButton":
                new = "Off" if cur == "On" else "On"
            elif state == "Nmi":
                new = cur
            else:
                raise error.NotSupportedError(f"Power state {state} is not supported")
            self._update(system, power_state=new, pending_power=None)
            write_power(new.lower())

    fake._get, fake.set_power_state = _get, set_power_state

    app = emu.app
    app.configure(
        extra_config={
            "SUSHY_EMULATOR_LISTEN_IP": args.address,
            "SUSHY_EMULATOR_LISTEN_PORT": args.port,
            "SUSHY_EMULATOR_SSL_CERT": args.cert,
            "SUSHY_EMULATOR_SSL_KEY": args.key,
            "SUSHY_EMULATOR_STATE_DIR": args.state_dir,
            "SUSHY_EMULATOR_FAKE_DRIVER": True,
            "SUSHY_EMULATOR_AUTH_FILE": htpasswd,
            "SUSHY_EMULATOR_FAKE_SYSTEMS": [
                {
                    "uuid": system_uuid,
                    "name": args.name,
                    "power_state": "On",
                    "external_notifier": False,
                    "nics": [],
                }
            ],
        }
    )

    inner = app.wsgi_app  # includes the basic-auth middleware, so 401s are logged too

    def logged(environ, start_response):
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        extra = ""
        if method == "POST":
            try:
                size = int(environ.get("CONTENT_LENGTH") or 0)
                body = environ["wsgi.input"].read(size) if size else b""
                environ["wsgi.input"] = io.BytesIO(body)
                reset = json.loads(body or b"{}").get("ResetType")
                if reset:
                    extra = f" ResetType={reset}"
            except Exception:
                pass
        status = ["?"]

        def sr(st, headers, exc_info=None):
            status[0] = st.split(" ", 1)[0]
            return start_response(st, headers, exc_info)

        with lock:
            read_power()
            try:
                return inner(environ, sr)
            finally:
                log(f"{method} {path}{extra} -> {status[0]}")

    app.wsgi_app = logged

    from werkzeug.serving import make_server

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(args.address, args.port, app, threaded=True, ssl_context=ctx)
    log(
        f"started https://{args.address}:{args.port} user={args.user} "
        f"system=/redfish/v1/Systems/{system_uuid}"
    )
    with open(args.pid_file + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(args.pid_file + ".tmp", args.pid_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
