"""test_man_pages.py - the built man pages render without warnings and cover what --help lists.

opsconductord(8) and opsctl(1) are written by hand: every option of `opsconductord --help`
and every command and option of opsctl must appear in them. opsconductord.conf(5) is generated
from the config tables (its content is checked by the meson tests of suite `config`)."""
import os
import re
import subprocess

from conftest import BUILD_DIR, DAEMON

MAN = BUILD_DIR / "man"
OPSCTL = BUILD_DIR / "cli" / "opsctl" / "opsctl"
PAGES = ["opsconductord.8", "opsconductord.conf.5", "opsctl.1"]


def rendered(page):
    """The page as man shows it (groff, plain text), and groff's warnings."""
    r = subprocess.run(["groff", "-man", "-ww", "-Tutf8", "-P-cbou", str(MAN / page)],
                       capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    return r.stdout, r.stderr


def test_pages_render_without_warnings():
    for page in PAGES:
        text, warnings = rendered(page)
        assert warnings == "", f"{page}: {warnings}"
        assert "@" not in re.sub(r"\S+@\S+", "", text), f"{page}: an unfilled @VARIABLE@"
        assert text.count("\n") > 80, page


def words(text):
    # Joined as a reader sees them: hyphenation at line ends undone.
    return re.sub(r"[\u2010-]\n\s*", "-", text)


def test_opsconductord_page_describes_every_option():
    text = words(rendered("opsconductord.8")[0])
    help_text = subprocess.run([str(DAEMON), "--help"], capture_output=True, text=True).stdout
    options = set(re.findall(r"(--[a-z][a-z-]+)", help_text.split("configuration keys:")[0]))
    assert {"--config", "--print-config", "--dump-config-reference", "--check-config"} <= options
    missing = [o for o in sorted(options) if o not in text]
    assert not missing, f"opsconductord(8) lacks {missing}"
    for command in ("backup", "user add", "rotate-key"):
        assert command in text


def test_opsctl_page_describes_every_command_and_option():
    text = words(rendered("opsctl.1")[0])
    table = subprocess.run([str(OPSCTL), "__commands"], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert len(table) > 50
    missing = []
    for line in table:
        command, _, options = line.partition("\t")
        verb = command.split()[-1]
        if not re.search(rf"\b{verb}\b", text):
            missing.append(command)
        missing += [f"{command} {o}" for o in options.split() if o not in text]
    assert not missing, f"opsctl(1) lacks {missing}"
    exit_status = text.split("\nEXIT STATUS\n")[1].split("\nEXAMPLES\n")[0]
    codes = [int(m) for m in re.findall(r"^ {7}(\d+) ", exit_status, re.M)]
    assert codes == [0, 1, 2, 3, 4, 5, 6, 130], exit_status
