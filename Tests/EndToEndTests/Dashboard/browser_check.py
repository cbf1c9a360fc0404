"""Drive Cairn's dashboard in a real headless Chromium and check what a person would see.

Usage:
    browser_check.py --base http://127.0.0.1:PORT --spec spec.json --shots DIR [--var NAME=VALUE ...]
    browser_check.py --base ... --spec - --shots DIR          (the spec on standard input)

Needs Debian's `chromium` and `chromium-driver` (the Makefile's `make deps`) and selenium in the
project venv (`make venv`). Selenium Manager is never used: chromedriver comes from PATH and the
browser from /usr/bin/chromium (or --chromium). The browser is headless with a 1440x900 viewport
and reaches only 127.0.0.1/localhost: every other host fails to resolve, and a dead proxy
catches IP literals, so a page that loads something from a CDN fails visibly.

The spec is JSON, {"steps": [...]}, run in order in ONE browser session (cookies persist). Every
string in a step may use ${name} for a value stored by `capture`/`fetch` or given with --var.
Each step is an object with an "op" (and may carry a "comment"):

  {"op":"theme", "scheme":"light"|"dark"}
      Emulate prefers-color-scheme from now on, for this and every later page.
  {"op":"visit", "path":"/runs?status=Failed", "name":"runs", "wait":"[data-testid=page-runs]"}
      Load base+path (or an absolute URL), wait up to 10 s for the `wait` selector, print the
      time from navigation start to the selector found, then run the page check (below).
      With "paint":"id", also print when the browser first painted an element carrying
      elementtiming="id" (the Element Timing API; from navigation start).
  {"op":"shot", "name":"runs-light"}
      Save the 1440x900 viewport to DIR/runs-light.png.
  {"op":"expect", "selector":"...", <condition>, "any":false}
      Wait up to 5 s for the condition; on failure say what was found. Conditions (combinable):
        "count":N  exactly N matches        "min":N   at least N        "absent":true  none
        "text":"exact"  /  "contains":"sub"  the element's rendered text, whitespace collapsed
        "attr":{"name":"data-status","value":"Failed"}   ("value" left out: attribute present)
      text/contains/attr must hold for EVERY matching element (and at least one must match),
      or for at least one of them with "any":true. So `[data-testid=run-row]` with
      attr data-status=Failed checks a whole filtered list; narrow the selector for one element.
  {"op":"click", "selector":"...", "confirm":true|false}
      Click. "confirm" answers the confirm()/alert() dialog the click opens: true accepts,
      false dismisses; a dialog that opens without "confirm" in the step fails it.
  {"op":"fill", "selector":"...", "value":"..."}       Type into an input (or choose in a <select>).
  {"op":"submit", "selector":"form..."}               Submit the form (or the form of a button)
      as a person would (requestSubmit: validation and submit handlers run).
  {"op":"press", "keys":"j"}                          Send keys to the page body. "keys" may be
      a list, and a key name such as "Escape", "Enter", "ArrowDown" means that key.
  {"op":"wait_url", "contains":"/runs/"}              Wait up to 10 s for the URL.
  {"op":"capture", "selector":"...", "attr":"href"|"text"|<attribute>, "as":"runLink",
   "regex":"/runs/([^/?#]+)"}
      Store the first match's attribute (as written in the HTML, so an href stays relative) or
      rendered text; with "regex", store its first group (or the whole match).
  {"op":"fetch", "method":"GET", "path":"/v1/runs/${runId}", "expect_status":200,
   "json_path":"data.status", "equals":"Cancelled", "as":"x", "retry_seconds":10,
   "body":{...}, "headers":{...}}
      An HTTP request from Python with the browser's cookies, retried every 250 ms until it
      passes or retry_seconds run out (default: one try). expect_status defaults to any 2xx.
      json_path is dotted; a number indexes a list ("data.items.0.id"). "as" stores the value
      at json_path (the whole body without one); a non-string value is stored as JSON.
  {"op":"check"}
      Run the page check now.

  click, submit and press also take "wait":selector (waited for after the action, up to 10 s)
  and "navigates":true|false (first wait for the current page to be replaced; submit defaults
  to true, the others to false). Any step may set "timeout" (seconds) to change its wait.

The page check runs after visit, click, submit, press, wait_url and check steps, and once more
after the last step. It looks at everything since the previous check and fails on:
  - a console message of level SEVERE, or a WARNING that says "Refused to" or "Content Security
    Policy" (CSP violations are errors); the browser's own favicon.ico request answered 404 is
    ignored. A step may list expected messages to ignore: "allow_console":["status of 422"].
  - any response with status >= 500;
  - any request to a host other than 127.0.0.1/localhost (or the --base host).

Output: one line per step ("ok  visit /runs (412 ms)" or "FAIL ..."), then a summary line.
On the first failure the harness saves DIR/failure-<step>.png and DIR/failure-<step>.html (the
page's outerHTML) and stops. Exit codes: 0 every step passed; 1 a step failed; 2 the spec or the
command line is wrong; 3 the browser could not be started. Times are printed, never asserted.
"""

import argparse
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import (
    JavascriptException,
    NoAlertPresentException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

VIEWPORT = (1440, 900)
NAVIGATION_TIMEOUT = 10.0
EXPECT_TIMEOUT = 5.0
PAGE_LOAD_TIMEOUT = 30.0
POLL_SECONDS = 0.1
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_PROBLEMS_SHOWN = 15

COMMON_KEYS = {"op", "comment", "timeout"}
ACTION_KEYS = {"confirm", "wait", "navigates", "allow_console"}
# op -> (required keys, optional keys)
OPS = {
    "theme": ({"scheme"}, set()),
    "visit": ({"path"}, {"name", "wait", "paint", "allow_console"}),
    "shot": ({"name"}, set()),
    "expect": ({"selector"}, {"count", "min", "absent", "text", "contains", "attr", "any"}),
    "click": ({"selector"}, ACTION_KEYS),
    "fill": ({"selector", "value"}, set()),
    "submit": ({"selector"}, ACTION_KEYS),
    "press": ({"keys"}, ACTION_KEYS),
    "wait_url": ({"contains"}, {"allow_console"}),
    "capture": ({"selector", "attr", "as"}, {"regex"}),
    "fetch": (
        {"path"},
        {"method", "body", "headers", "expect_status", "json_path", "equals", "as", "retry_seconds"},
    ),
    "check": (set(), {"allow_console"}),
}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Every element the selector matches, with its rendered text and one attribute, in one round
# trip: nothing can go stale between finding an element and reading it.
READ_ELEMENTS_JS = """
const [selector, attribute] = arguments;
return Array.from(document.querySelectorAll(selector)).map(el => ({
  text: (el.innerText ?? el.textContent ?? '').replace(/\\s+/g, ' ').trim(),
  attr: attribute ? el.getAttribute(attribute) : null,
}));
"""
SUBMIT_JS = """
const el = arguments[0];
if (el.tagName === 'FORM') { el.requestSubmit(); return true; }
if (el.form) { el.form.requestSubmit(el.type === 'submit' ? el : undefined); return true; }
return false;
"""


class StepFailure(Exception):
    """A step did not pass; the message says what was expected and what was found."""


class SpecError(Exception):
    """The spec or the command line is malformed."""


# --- the spec ---------------------------------------------------------------------------------


def load_spec(source: str) -> list:
    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
        spec = json.loads(text)
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot read the spec {source}: {error}")
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list):
        raise SpecError('the spec must be an object {"steps": [...]}')
    for number, step in enumerate(spec["steps"], start=1):
        validate_step(number, step)
    return spec["steps"]


def validate_step(number: int, step) -> None:
    if not isinstance(step, dict) or "op" not in step:
        raise SpecError(f"step {number}: must be an object with an \"op\"")
    op = step["op"]
    if op not in OPS:
        raise SpecError(f"step {number}: unknown op {op!r} (known: {', '.join(OPS)})")
    required, optional = OPS[op]
    missing = required - step.keys()
    unknown = step.keys() - required - optional - COMMON_KEYS
    if missing:
        raise SpecError(f"step {number} ({op}): missing {', '.join(sorted(missing))}")
    if unknown:
        raise SpecError(f"step {number} ({op}): unknown field {', '.join(sorted(unknown))}")
    if op == "theme" and step["scheme"] not in ("light", "dark"):
        raise SpecError(f"step {number}: scheme must be \"light\" or \"dark\"")
    if op == "shot" and not re.fullmatch(r"[A-Za-z0-9._-]+", str(step["name"])):
        raise SpecError(f"step {number}: a shot name may use letters, digits, . _ - only")
    if op == "expect" and not step.keys() & {"count", "min", "absent", "text", "contains", "attr"}:
        raise SpecError(f"step {number}: expect needs count, min, absent, text, contains or attr")


def substitute(value, variables: dict):
    """Replace ${name} in every string inside value (nested lists and objects too)."""
    if isinstance(value, str):
        def lookup(match):
            name = match.group(1)
            if name not in variables:
                known = ", ".join(sorted(variables)) or "none"
                raise StepFailure(f"unknown variable ${{{name}}} (stored so far: {known})")
            return variables[name]
        return VARIABLE.sub(lookup, value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def describe(step: dict) -> str:
    op = step["op"]
    if op == "theme":
        return f"theme {step['scheme']}"
    if op == "visit":
        return f"visit {step['path']}"
    if op == "shot":
        return f"shot {step['name']}"
    if op == "expect":
        conditions = [f"{key}={json.dumps(step[key])}" for key in
                      ("count", "min", "absent", "text", "contains", "attr", "any") if key in step]
        return f"expect {step['selector']} {' '.join(conditions)}"
    if op in ("click", "fill", "submit"):
        return f"{op} {step['selector']}"
    if op == "press":
        return f"press {json.dumps(step['keys'])}"
    if op == "wait_url":
        return f"wait_url contains {step['contains']}"
    if op == "capture":
        return f"capture {step['selector']} {step['attr']} as {step['as']}"
    if op == "fetch":
        return f"fetch {step.get('method', 'GET')} {step['path']}"
    return op


# --- the browser ------------------------------------------------------------------------------


def start_browser(chromium: str) -> webdriver.Chrome:
    driver_path = shutil.which("chromedriver")
    if not driver_path:
        raise RuntimeError("chromedriver is not on PATH: apt-get install chromium chromium-driver")
    if not os.path.exists(chromium):
        raise RuntimeError(f"no Chromium at {chromium}: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}", "--no-first-run", "--lang=en-US",
        "--disable-extensions", "--disable-background-networking", "--disable-component-update",
        # Only loopback: other names do not resolve, and a dead proxy catches IP literals
        # (Chromium never proxies loopback addresses).
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
        "--proxy-server=http://127.0.0.1:9",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
    # --window-size includes the window's frame; this makes the viewport itself 1440x900.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
    return driver


def browser_versions(driver) -> str:
    chrome = driver.capabilities.get("chrome", {})
    driver_version = chrome.get("chromedriverVersion", "?").split(" ")[0]
    return f"Chromium {driver.capabilities.get('browserVersion', '?')}, ChromeDriver {driver_version}"


# --- the page check ---------------------------------------------------------------------------


def is_local_url(url: str, extra_hosts: set) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True  # data:, blob:, about:, ... never leave the machine
    return (parts.hostname or "") in LOCAL_HOSTS | extra_hosts


def network_problems(entries: list, extra_hosts: set) -> list:
    problems = []
    for entry in entries:
        message = json.loads(entry["message"]).get("message", {})
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            if not is_local_url(url, extra_hosts):
                problems.append(f"request to a host other than 127.0.0.1/localhost: {url}")
        elif method == "Network.webSocketCreated":
            if not is_local_url(params.get("url", ""), extra_hosts):
                problems.append(f"websocket to a host other than 127.0.0.1/localhost: {params['url']}")
        elif method == "Network.responseReceived":
            response = params.get("response", {})
            if response.get("status", 0) >= 500:
                problems.append(f"HTTP {response['status']} from {response.get('url')}")
    return problems


def is_console_error(entry: dict) -> bool:
    level, text = entry.get("level"), entry.get("message", "")
    if level == "SEVERE":
        return True
    return level == "WARNING" and ("Refused to" in text or "Content Security Policy" in text)


def is_ignored_console(text: str, allowed: list) -> bool:
    # Chromium asks for /favicon.ico by itself; a page without one is not broken.
    if "/favicon.ico - Failed to load resource" in text and "status of 404" in text:
        return True
    return any(fragment in text for fragment in allowed)


def console_problems(entries: list, allowed: list) -> list:
    return [f"console {entry['level']}: {entry['message']}" for entry in entries
            if is_console_error(entry) and not is_ignored_console(entry["message"], allowed)]


def check_page(driver, extra_hosts: set, allowed: list) -> None:
    """Fail on what the browser logged since the previous check (reading the logs empties them)."""
    problems = network_problems(driver.get_log("performance"), extra_hosts)
    problems += console_problems(driver.get_log("browser"), allowed)
    problems = list(dict.fromkeys(problems))
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]
        if len(problems) > len(shown):
            shown.append(f"... and {len(problems) - len(shown)} more")
        raise StepFailure(f"page check at {driver.current_url}:\n- " + "\n- ".join(shown))


# --- waiting ----------------------------------------------------------------------------------


def wait_for(condition, timeout: float):
    """Call condition() until it returns (True, detail) or timeout passes; return the last detail."""
    deadline = time.monotonic() + timeout
    while True:
        passed, detail = condition()
        if passed or time.monotonic() >= deadline:
            return passed, detail
        time.sleep(POLL_SECONDS)


def read_elements(driver, selector: str, attribute=None) -> list:
    try:
        return driver.execute_script(READ_ELEMENTS_JS, selector, attribute)
    except JavascriptException as error:
        raise StepFailure(f"bad selector {selector!r}: {first_line(error.msg)}")


def wait_for_element(driver, selector: str, timeout: float):
    try:
        return WebDriverWait(driver, timeout, POLL_SECONDS).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, selector)))
    except TimeoutException:
        raise StepFailure(f"no element matches {selector} after {timeout:g} s on {driver.current_url}")


def wait_for_new_page(driver, old_root, timeout: float) -> None:
    try:
        WebDriverWait(driver, timeout, POLL_SECONDS).until(expected_conditions.staleness_of(old_root))
        WebDriverWait(driver, timeout, POLL_SECONDS).until(
            lambda d: d.execute_script("return document.readyState") == "complete")
    except TimeoutException:
        raise StepFailure(f"the page was not replaced within {timeout:g} s (still {driver.current_url})")


def first_line(text) -> str:
    return (str(text or "").strip().splitlines() or [""])[0]


# --- expect -----------------------------------------------------------------------------------


def element_matches(step: dict, element: dict) -> bool:
    if "text" in step and element["text"] != " ".join(str(step["text"]).split()):
        return False
    if "contains" in step and str(step["contains"]) not in element["text"]:
        return False
    if "attr" in step:
        wanted = step["attr"].get("value")
        if element["attr"] is None or (wanted is not None and element["attr"] != str(wanted)):
            return False
    return True


def evaluate_expect(step: dict, elements: list) -> tuple:
    """(passed, what was found) for one reading of the page."""
    count = len(elements)
    if step.get("absent") and count:
        return False, f"found {count} element(s), wanted none"
    if "count" in step and count != step["count"]:
        return False, f"found {count} element(s), wanted {step['count']}"
    if "min" in step and count < step["min"]:
        return False, f"found {count} element(s), wanted at least {step['min']}"
    if step.keys() & {"text", "contains", "attr"}:
        if not count:
            return False, "found no element"
        results = [element_matches(step, element) for element in elements]
        if not (any(results) if step.get("any") else all(results)):
            return False, f"found {count} element(s): " + summarize_elements(step, elements, results)
    return True, f"{count} element(s)"


def summarize_elements(step: dict, elements: list, results: list) -> str:
    described = []
    for element, matched in list(zip(elements, results))[:5]:
        text = element["text"] if len(element["text"]) <= 80 else element["text"][:77] + "..."
        item = f"text={json.dumps(text)}"
        if "attr" in step:
            item += f" {step['attr']['name']}={json.dumps(element['attr'])}"
        described.append(item + ("" if matched else " (no match)"))
    more = f" ... and {len(elements) - 5} more" if len(elements) > 5 else ""
    return "; ".join(described) + more


# --- dialogs, keys ----------------------------------------------------------------------------


def open_dialog(driver):
    try:
        alert = driver.switch_to.alert
        return alert, alert.text
    except NoAlertPresentException:
        return None, None


def answer_dialog(driver, step: dict) -> str:
    """Answer the dialog an action opened as the step says; fail on one nobody expected."""
    if "confirm" not in step:
        alert, text = open_dialog(driver)
        if alert:
            alert.dismiss()
            raise StepFailure(f"a dialog opened ({text!r}) but the step has no \"confirm\"")
        return ""
    try:
        alert = WebDriverWait(driver, 2, POLL_SECONDS).until(expected_conditions.alert_is_present())
    except TimeoutException:
        raise StepFailure("expected a dialog to answer (\"confirm\" is set) but none opened")
    text = alert.text
    if step["confirm"]:
        alert.accept()
    else:
        alert.dismiss()
    return f" (dialog {text!r} {'accepted' if step['confirm'] else 'dismissed'})"


def key_sequence(keys) -> list:
    """"j" -> ["j"]; "Escape" -> [Keys.ESCAPE]; "ArrowDown" -> [Keys.ARROW_DOWN]; lists kept."""
    sequence = []
    for key in keys if isinstance(keys, list) else [keys]:
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", str(key)).upper()
        sequence.append(getattr(Keys, name) if len(str(key)) > 1 and hasattr(Keys, name) else str(key))
    return sequence


# --- HTTP from Python -------------------------------------------------------------------------


def http_request(method: str, url: str, cookie_header: str, body, headers: dict) -> tuple:
    data = None
    request_headers = {"Accept": "application/json", **{k: str(v) for k, v in headers.items()}}
    if body is not None:
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        request_headers.setdefault("Content-Type", "application/json")
    if cookie_header:
        request_headers["Cookie"] = cookie_header
    request = urllib.request.Request(url, data=data, method=method, headers=request_headers)
    # Never through a proxy from the environment: the target is on this machine.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as error:
        return None, f"request failed: {error}"


def json_value(text: str, path: str):
    """(found, value) at a dotted path such as data.items.0.id."""
    try:
        value = json.loads(text)
    except ValueError:
        return False, "the body is not JSON"
    for part in path.split("."):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return False, f"no {path} in the body"
    return True, value


def as_variable(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# --- the steps --------------------------------------------------------------------------------


class Session:
    def __init__(self, driver, base: str, shots: str, variables: dict):
        self.driver = driver
        self.base = base.rstrip("/")
        self.shots = shots
        self.variables = variables
        self.extra_hosts = {urllib.parse.urlsplit(base).hostname or ""}
        self.scheme = None

    def url(self, path: str) -> str:
        return path if re.match(r"^[a-z]+://", path) else self.base + "/" + path.lstrip("/")

    def check(self, step: dict) -> None:
        check_page(self.driver, self.extra_hosts, step.get("allow_console", []))

    def run(self, step: dict) -> str:
        """Run one (already substituted) step; return the detail for its ok line."""
        return getattr(self, "op_" + step["op"])(step)

    def op_theme(self, step):
        self.scheme = step["scheme"]
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "media": "", "features": [{"name": "prefers-color-scheme", "value": self.scheme}]})
        return ""

    def op_visit(self, step):
        timeout = step.get("timeout", NAVIGATION_TIMEOUT)
        started = time.monotonic()
        try:
            self.driver.get(self.url(step["path"]))
        except TimeoutException:
            raise StepFailure(f"{self.url(step['path'])} did not finish loading in {PAGE_LOAD_TIMEOUT:g} s")
        if "wait" in step:
            wait_for_element(self.driver, step["wait"], timeout)
        elapsed = (time.monotonic() - started) * 1000
        painted = self.first_paint(step["paint"]) if "paint" in step else None
        self.check(step)
        name = f" [{step['name']}]" if "name" in step else ""
        return f"{name} ({elapsed:.0f} ms" + (f", painted {painted:.0f} ms" if painted is not None else "") + ")"

    def first_paint(self, identifier):
        """When an element with elementtiming=identifier was first painted, in ms from
        navigation start; fails the step if the browser recorded none."""
        painted = self.driver.execute_async_script("""
            const [id, done] = arguments, times = [];
            const observer = new PerformanceObserver(list => {
              for (const entry of list.getEntries()) if (entry.identifier === id) times.push(entry.renderTime || entry.loadTime);
            });
            observer.observe({type: 'element', buffered: true});
            setTimeout(() => { observer.disconnect(); done(times.length ? Math.min(...times) : null); }, 100);
        """, identifier)
        if painted is None:
            raise StepFailure(f"the browser recorded no paint of an element with elementtiming={identifier!r}")
        return painted

    def op_shot(self, step):
        path = os.path.join(self.shots, step["name"] + ".png")
        if not self.driver.save_screenshot(path):
            raise StepFailure(f"could not save {path}")
        return f" -> {path}"

    def op_expect(self, step):
        def reading():
            elements = read_elements(self.driver, step["selector"], step.get("attr", {}).get("name"))
            return evaluate_expect(step, elements)
        passed, detail = wait_for(reading, step.get("timeout", EXPECT_TIMEOUT))
        if not passed:
            raise StepFailure(f"{detail} on {self.driver.current_url}")
        return f" ({detail})"

    def act(self, step, action) -> str:
        """Do a click/submit/press the same way: dialog, navigation, wait selector, page check."""
        timeout = step.get("timeout", NAVIGATION_TIMEOUT)
        old_root = self.driver.find_element(By.TAG_NAME, "html")
        action()
        detail = answer_dialog(self.driver, step)
        if step.get("navigates", step["op"] == "submit"):
            wait_for_new_page(self.driver, old_root, timeout)
        if "wait" in step:
            wait_for_element(self.driver, step["wait"], timeout)
        self.check(step)
        return detail

    def op_click(self, step):
        timeout = step.get("timeout", EXPECT_TIMEOUT)
        wait_for_element(self.driver, step["selector"], timeout)
        try:
            element = WebDriverWait(self.driver, timeout, POLL_SECONDS).until(
                expected_conditions.element_to_be_clickable((By.CSS_SELECTOR, step["selector"])))
        except TimeoutException:
            raise StepFailure(f"{step['selector']} is not visible and enabled after {timeout:g} s")
        return self.act(step, element.click)

    def op_fill(self, step):
        element = wait_for_element(self.driver, step["selector"], step.get("timeout", EXPECT_TIMEOUT))
        if element.tag_name.lower() == "select":
            choose_option(Select(element), str(step["value"]))
        else:
            element.clear()
            element.send_keys(str(step["value"]))
        return ""

    def op_submit(self, step):
        element = wait_for_element(self.driver, step["selector"], step.get("timeout", EXPECT_TIMEOUT))

        def submit():
            if not self.driver.execute_script(SUBMIT_JS, element):
                raise StepFailure(f"{step['selector']} is neither a form nor inside one")
        return self.act(step, submit)

    def op_press(self, step):
        def press():
            self.driver.execute_script("document.activeElement && document.activeElement.blur()")
            ActionChains(self.driver).send_keys(*key_sequence(step["keys"])).perform()
        return self.act(step, press)

    def op_wait_url(self, step):
        timeout = step.get("timeout", NAVIGATION_TIMEOUT)
        passed, url = wait_for(lambda: (step["contains"] in self.driver.current_url,
                                        self.driver.current_url), timeout)
        if not passed:
            raise StepFailure(f"after {timeout:g} s the URL is {url}")
        self.check(step)
        return f" ({url})"

    def op_capture(self, step):
        attribute = None if step["attr"] == "text" else step["attr"]

        def reading():
            elements = read_elements(self.driver, step["selector"], attribute)
            return bool(elements), elements
        found, elements = wait_for(reading, step.get("timeout", EXPECT_TIMEOUT))
        if not found:
            raise StepFailure(f"no element matches {step['selector']} on {self.driver.current_url}")
        value = elements[0]["text"] if attribute is None else elements[0]["attr"]
        if value is None:
            raise StepFailure(f"{step['selector']} has no attribute {attribute}")
        if "regex" in step:
            match = re.search(step["regex"], value)
            if not match:
                raise StepFailure(f"{value!r} does not match {step['regex']!r}")
            value = match.group(1) if match.groups() else match.group(0)
        self.variables[step["as"]] = value
        return f" = {value}"

    def cookie_header(self) -> str:
        try:
            cookies = self.driver.get_cookies()
        except WebDriverException:
            return ""
        return "; ".join(f"{cookie['name']}={cookie['value']}" for cookie in cookies)

    def fetch_once(self, step) -> tuple:
        """(passed, detail, value to store) for one request."""
        status, text = http_request(step.get("method", "GET").upper(), self.url(step["path"]),
                                    self.cookie_header(), step.get("body"), step.get("headers", {}))
        wanted = step.get("expect_status")
        if status is None or (status != wanted if wanted is not None else not 200 <= status < 300):
            return False, f"status {status}, wanted {wanted or '2xx'}; body: {text[:300]}", None
        if "json_path" not in step:
            return True, f"status {status}", text
        found, value = json_value(text, step["json_path"])
        if not found:
            return False, f"status {status}, {value}; body: {text[:300]}", None
        if "equals" in step and value != step["equals"]:
            return False, (f"{step['json_path']} is {json.dumps(value)}, wanted "
                           f"{json.dumps(step['equals'])}"), value
        return True, f"status {status}, {step['json_path']} = {json.dumps(value)}", value

    def op_fetch(self, step):
        result = {}

        def attempt():
            passed, detail, value = self.fetch_once(step)
            result["value"] = value
            return passed, detail
        passed, detail = wait_for(attempt, float(step.get("retry_seconds", 0)))
        if not passed:
            raise StepFailure(detail)
        if "as" in step:
            self.variables[step["as"]] = as_variable(result["value"])
        return f" ({detail})"

    def op_check(self, step):
        self.check(step)
        return ""


def choose_option(select: Select, value: str) -> None:
    try:
        select.select_by_value(value)
    except WebDriverException:
        try:
            select.select_by_visible_text(value)
        except WebDriverException:
            raise StepFailure(f"the <select> has no option with value or text {value!r}")


# --- running ----------------------------------------------------------------------------------


def failure_message(error: Exception) -> str:
    if isinstance(error, StepFailure):
        return str(error)
    if isinstance(error, WebDriverException):
        return f"{type(error).__name__}: {first_line(error.msg)}"
    return f"{type(error).__name__}: {error}"


def save_failure(driver, shots: str, number: int) -> list:
    """Screenshot and outerHTML of the page as it was when step `number` failed."""
    saved = []
    try:
        alert, _ = open_dialog(driver)
        if alert:
            alert.dismiss()
        png = os.path.join(shots, f"failure-{number}.png")
        if driver.save_screenshot(png):
            saved.append(png)
        html = os.path.join(shots, f"failure-{number}.html")
        with open(html, "w", encoding="utf-8") as out:
            out.write(driver.execute_script("return document.documentElement.outerHTML") or "")
        saved.append(html)
    except (WebDriverException, OSError) as error:
        print(f"     (could not save the failure page: {failure_message(error)})")
    return saved


def run_steps(session: Session, steps: list) -> int:
    """Run every step, then one last page check; return the number of the failed step or 0."""
    final_check = {"op": "check", "comment": "after the last step"}
    for number, raw_step in enumerate(steps + [final_check], start=1):
        label = "check after the last step" if raw_step is final_check else raw_step["op"]
        try:
            step = substitute(raw_step, session.variables)
            label = "check after the last step" if raw_step is final_check else describe(step)
            detail = session.run(step)
        except Exception as error:  # every failure is reported the same way
            message = failure_message(error).replace("\n", "\n     ")
            print(f"FAIL {label}: {message}", flush=True)
            for path in save_failure(session.driver, session.shots, number):
                print(f"     saved {path}")
            return number
        if raw_step is not final_check:
            print(f"ok  {label}{detail}", flush=True)
    return 0


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check dashboard pages in headless Chromium.")
    parser.add_argument("--base", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--spec", required=True, help="spec JSON file, or - for standard input")
    parser.add_argument("--shots", required=True, help="folder for screenshots and failure pages")
    parser.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                        help="a value for ${NAME} in the spec (repeatable)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    return parser.parse_args(argv)


def parse_variables(pairs: list) -> dict:
    variables = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not VARIABLE.fullmatch("${" + name + "}"):
            raise SpecError(f"--var wants NAME=VALUE, got {pair!r}")
        variables[name] = value
    return variables


def main(argv: list) -> int:
    arguments = parse_arguments(argv)
    try:
        steps = load_spec(arguments.spec)
        variables = parse_variables(arguments.var)
    except SpecError as error:
        print(f"browser_check: {error}", file=sys.stderr)
        return 2
    os.makedirs(arguments.shots, exist_ok=True)
    started = time.monotonic()
    try:
        driver = start_browser(arguments.chromium)
    except (RuntimeError, WebDriverException) as error:
        print(f"browser_check: cannot start the browser: {failure_message(error)}", file=sys.stderr)
        return 3
    try:
        print(f"browser: {browser_versions(driver)}, started in "
              f"{(time.monotonic() - started) * 1000:.0f} ms", flush=True)
        failed = run_steps(Session(driver, arguments.base, arguments.shots, variables), steps)
    finally:
        driver.quit()
    seconds = time.monotonic() - started
    if failed:
        where = "the check after the last step" if failed > len(steps) else f"step {failed} of {len(steps)}"
        print(f"browser_check: FAILED at {where} ({failed - 1} passed) in {seconds:.1f} s")
        return 1
    print(f"browser_check: all {len(steps)} steps passed in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
