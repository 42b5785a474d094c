"""test_readme.py - the README's First steps run as written against a real daemon.

A new user copies the shell blocks of "First steps" into a terminal after
`./scripts/run`; they must work with nothing but what that set-up installs
(scripts/deps run). The blocks run here unchanged except for the daemon's
address, in a directory that holds `data/initial-admin-password` as the
daemon's first start leaves it."""
import os
import re
import shutil
import subprocess

from conftest import ADMIN_PASSWORD, ROOT


def section_blocks(title):
    """The ```sh blocks of the README section `## title`, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end > 0 else len(text)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_first_steps_run_as_written(daemon, tmp_path):
    blocks = section_blocks("First steps")
    assert blocks, "README.md has no ```sh block under ## First steps"
    for tool in ("curl", "python3", "ssh-keygen"):
        assert shutil.which(tool), f"{tool} is used by the README but not installed"
    (tmp_path / "data").mkdir()
    pw = tmp_path / "data" / "initial-admin-password"
    pw.write_text(ADMIN_PASSWORD + "\n")
    os.chmod(pw, 0o600)
    script = "\n".join(blocks).replace("http://127.0.0.1:8080", daemon.base)
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert '"error"' not in r.stdout, r.stdout
    # The README's promise: ssh-keygen shows the fingerprint the API shows.
    local = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", tmp_path / "deploy_key.pub"],
                           capture_output=True, text=True, check=True).stdout.split()[1]
    assert f'"fingerprint": "{local}"' in r.stdout or f'"fingerprint":"{local}"' in r.stdout, \
        r.stdout
