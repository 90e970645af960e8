"""Properties of the built binaries that a regression would silently lose."""
import os
import re
import subprocess
import unittest

import harness

PAM_SM = {"pam_sm_authenticate", "pam_sm_setcred", "pam_sm_acct_mgmt",
          "pam_sm_open_session", "pam_sm_close_session", "pam_sm_chauthtok"}


def needed(path):
    """The DT_NEEDED libraries of an ELF file."""
    out = subprocess.run(["readelf", "-d", path], check=True,
                         capture_output=True, text=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


class Binaries(unittest.TestCase):
    def setUp(self):
        b = harness.build_dir()
        self.module = os.path.join(b, "pam_oauth", "pam_oauth.so")
        self.helper = os.path.join(b, "curl_helper", "oauth-token")

    def test_module_exports_only_pam_entry_points(self):
        out = subprocess.run(["nm", "-D", "--defined-only", self.module],
                             check=True, capture_output=True, text=True).stdout
        syms = {l.split()[-1] for l in out.splitlines()
                if re.search(r" [TDBRW] ", l)}
        self.assertEqual(syms, PAM_SM)

    def test_helper_cache_hit_loads_no_network_or_crypto_library(self):
        # libcurl is dlopen'd on the first request; libcrypto is not needed
        # at all by the helper, so a cache hit loads neither (issue 6);
        # libqrencode is dlopen'd only to draw a device login's QR code.
        libs = needed(self.helper)
        self.assertFalse([l for l in libs if "curl" in l or "crypto" in l
                          or "ssl" in l or "qrencode" in l], libs)

    def test_module_links_curl_and_qrencode_only_at_run_time(self):
        self.assertFalse([l for l in needed(self.module)
                          if "curl" in l or "qrencode" in l])

    def test_argon2_only_in_the_module(self):
        # Offline login (issue 13) is PAM-only: the module links libargon2,
        # the helper must not (its cache hit loads only libc and json-c).
        self.assertTrue([l for l in needed(self.module) if "argon2" in l],
                        needed(self.module))
        self.assertFalse([l for l in needed(self.helper) if "argon2" in l],
                         needed(self.helper))
        out = subprocess.run(["nm", "--defined-only", self.helper], check=True,
                             capture_output=True, text=True).stdout
        self.assertNotIn("po_offline_", out)


if __name__ == "__main__":
    unittest.main()
