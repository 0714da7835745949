"""The operator console in headless Chromium, driven by Selenium (run by scripts/browser-check).

Signs in with an admin token, places orders through the HTTP API and sees them in the overview
and on the charts, sends a poison message and sees it under dead letters with its reason, fixes
the product, redrives it and sees the queue empty, opens an order's timeline and compares it with
a rebuild from the log, runs a replay dry run. Saves a screenshot of each page in --out and fails
on any browser console error.
"""

import argparse
import base64
import datetime
import json
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


class Check(Exception):
    pass


def http(method, url, token=None, body=None, headers=None, basic=None):
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data, timeout=20) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        text = error.read().decode()
        return error.code, text


class ConsoleTest:
    def __init__(self, args):
        self.args = args
        self.base = args.base
        self.shots = 0
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,1500",
                         "--force-device-scale-factor=1", "--lang=en-GB"]:
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
        self.console_errors = []

    # MARK: helpers

    def wait(self, what, condition, timeout=30):
        try:
            # The page redraws what it refreshes: an element read as it is replaced is read again.
            return WebDriverWait(
                self.driver, timeout, poll_frequency=0.25, ignored_exceptions=[StaleElementReferenceException]
            ).until(lambda d: condition())
        except Exception as error:
            raise Check(f"timed out waiting for {what}") from error

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        elements = self.finds(css)
        return elements[0].text if elements else ""

    def screenshot(self, name):
        self.shots += 1
        path = f"{self.args.out}/{self.shots:02d}-{name}.png"
        self.driver.save_screenshot(path)
        print(f"  screenshot {path}")

    def collect_console(self):
        for entry in self.driver.get_log("browser"):
            if entry["level"] == "SEVERE":
                self.console_errors.append(entry["message"])

    def api(self, method, path, body=None, token=None, headers=None):
        return http(method, self.base + path, token=token or self.args.admin_token, body=body, headers=headers)

    def step(self, title):
        print(f"- {title}")
        self.collect_console()

    # MARK: the run

    def run(self):
        self.step("open /console and sign in with a token from `depot token`")
        self.driver.get(self.base + "/console")
        self.wait("the sign-in form", lambda: self.find("#token").is_displayed())
        # A customer's token is turned away before anything is asked of the edge.
        self.find("#token").send_keys(self.args.customer_token)
        self.find("#signin-button").click()
        self.wait("the refusal", lambda: "not admin" in self.text("#signin-error"))
        self.screenshot("sign-in")
        self.find("#token").clear()
        self.find("#token").send_keys(self.args.admin_token)
        self.find("#signin-button").click()
        self.wait("the overview", lambda: self.find("#overview").is_displayed())
        self.wait("the queue table", lambda: "depot.orders" in self.text("#queues"))
        if "console-operator" not in self.text("#who-name"):
            raise Check(f"signed in as {self.text('#who-name')!r}")
        # The token is held in memory only.
        stored = self.driver.execute_script(
            "return [document.cookie, localStorage.length, sessionStorage.length, location.href]")
        if stored[0] or stored[1] or stored[2] or "eyJ" in stored[3]:
            raise Check(f"the token leaked into cookie/storage/URL: {stored}")

        self.step("place orders through the HTTP API and see them in the overview and on the charts")
        status, _ = self.api("POST", "/v1/products", {"sku": "mug", "name": "Mug", "price_cents": 1200, "stock": 100},
                             headers={"Prefer": "wait=5"})
        if status != 201:
            raise Check(f"creating the product answered {status}")
        # Sixteen orders over about 16 s, so that the charts show a flow rather than one spike:
        # one in eight declined by the payment provider, one in eight for an unknown product.
        orders = []
        for index in range(16):
            if index:
                time.sleep(0.9)
            token = "tok_declined" if index % 8 == 5 else "tok_ok"
            lines = [{"sku": "no-such-sku" if index % 8 == 6 else "mug", "quantity": 1 + index % 3}]
            status, order = self.api("POST", "/v1/orders", {"lines": lines, "payment": {"token": token}},
                                     token=self.args.customer_token, headers={"Prefer": "wait=10"})
            if status != 201:
                raise Check(f"placing order {index} answered {status}: {order}")
            orders.append(order)
        confirmed = [o for o in orders if o["status"] == "confirmed"]
        if len(confirmed) != 12:
            raise Check(f"expected 12 confirmed orders, got {[o['status'] for o in orders]}")
        self.wait("16 placed orders in the totals", lambda: self.text("#total-placed b") == "16", timeout=20)
        self.wait("12 confirmed", lambda: self.text("#total-confirmed b") == "12", timeout=10)
        self.wait("2 rejected, 2 cancelled", lambda: self.text("#total-rejected b") == "2"
                  and self.text("#total-cancelled b") == "2", timeout=10)
        self.wait("the placed series drawn", lambda: self.finds("#chart-orders path[data-series='placed']"))
        self.wait("a latency line", lambda: self.finds("#chart-latency path[data-series='p50']"))
        self.wait("depot.orders consuming", lambda: self.text("#queues tr[data-queue='depot.orders'] td:nth-child(3)") == "1")
        self.screenshot("overview")

        self.step("send a poison message: a restock of a product that does not exist yet")
        message_id = str(uuid.uuid4())
        envelope = {"correlation_id": "late", "data": {"delta": 5, "sku": "late"}, "id": message_id,
                    "occurred_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "type": "stock.adjust", "version": 1}
        management = urllib.parse.urlsplit(self.args.management)
        credentials = f"{urllib.parse.unquote(management.username or 'guest')}:{urllib.parse.unquote(management.password or 'guest')}"
        host = f"{management.scheme}://{management.hostname}:{management.port or 15672}"
        status, routed = http(
            "POST", f"{host}/api/exchanges/{urllib.parse.quote(self.args.vhost, safe='')}/depot.commands/publish",
            basic=credentials,
            body={"properties": {"message_id": message_id, "type": "stock.adjust", "content_type": "application/json",
                                 "delivery_mode": 2, "correlation_id": "late"},
                  "routing_key": "stock.adjust", "payload": json.dumps(envelope), "payload_encoding": "string"})
        if status != 200 or not routed.get("routed"):
            raise Check(f"publishing the poison message: {status} {routed}")

        self.step("see it under dead letters with its reason")
        self.find("#tabs button[data-tab='dead-letters']").click()
        card = "[data-dead-queue='depot.inventory.dead']"
        self.wait("the dead letter", lambda: self.text(f"{card} .card-head .count") == "1", timeout=40)
        reason = self.text(f"{card} .reasons li .reason")
        if not reason.startswith("gave up after"):
            raise Check(f"the reason shown is {reason!r}")
        self.find(f"{card} button.open").click()
        self.wait("the message", lambda: self.finds(f".letter[data-message-id='{message_id}']"))
        shown = self.text(f".letter[data-message-id='{message_id}']")
        if "no product" not in shown and "late" not in shown:
            raise Check(f"the message card shows {shown!r}")
        self.wait("the badge", lambda: True)
        self.screenshot("dead-letters")

        self.step("fix the product, redrive the reason group, see the queue empty")
        status, _ = self.api("POST", "/v1/products", {"sku": "late", "name": "Late", "price_cents": 500, "stock": 0},
                             headers={"Prefer": "wait=5"})
        if status != 201:
            raise Check(f"creating the late product answered {status}")
        self.find(f"{card} .reasons li button.redrive-reason").click()
        self.wait("the confirmation", lambda: self.find("#confirm").is_displayed())
        self.screenshot("redrive-confirmation")
        self.find("#confirm-ok").click()
        self.wait("the job to succeed", lambda: self.finds(".job.succeeded"), timeout=30)
        job = self.text(".job.succeeded")
        if "redrove 1 message" not in job:
            raise Check(f"the job says {job!r}")
        self.wait("the queue empty", lambda: self.text(f"{card} .card-head .count") == "0", timeout=15)

        def restocked():
            status, product = self.api("GET", "/v1/products/late")
            return status == 200 and product["stock_available"] == 5
        self.wait("the restock applied", restocked, timeout=20)
        self.screenshot("dead-letters-redriven")

        self.step("open an order's timeline and compare it with a rebuild from the log")
        self.find("#tabs button[data-tab='orders']").click()
        self.wait("the latest orders", lambda: len(self.finds("table.orders tbody tr")) == 10)
        self.find("#order-query").send_keys("browser-customer")
        self.find("#order-search button").click()
        self.wait("the customer's orders", lambda: len(self.finds("table.orders tbody tr")) == 16)
        self.find("#order-query").clear()
        target = confirmed[0]["id"]
        self.find("#order-query").send_keys(target)
        self.find("#order-search button").click()
        self.wait("the order", lambda: self.finds(f"[data-order-detail='{target}']"))
        types = [row.get_attribute("data-type") for row in self.finds("tr.event")]
        expected = ["order.placed", "stock.reserved", "payment.requested", "payment.settled", "order.confirmed"]
        if types != expected:
            raise Check(f"the timeline shows {types}")
        if len(self.finds("svg.timeline circle")) != 5:
            raise Check("the timeline does not draw 5 events")
        if "← order.placed" not in self.text(".timeline-table"):
            raise Check("the timeline does not link an event to its cause")
        self.find("#rebuild-check-button").click()
        self.wait("the rebuild check", lambda: "equals a rebuild" in self.text("#rebuild-check"), timeout=20)
        self.screenshot("order-timeline")

        self.step("a replay dry run from the page")
        self.find("#tabs button[data-tab='replay']").click()
        self.find("#replay-start").click()
        self.wait("the dry run", lambda: "no differences" in self.text("#replay-message"), timeout=60)
        self.screenshot("replay-dry-run")

        self.step("the last hour")
        self.find("#tabs button[data-tab='overview']").click()
        self.find("#window button[data-window='1h']").click()
        self.wait("the hour's totals", lambda: "last 60 min" in self.text("#total-placed"), timeout=10)
        self.wait("the hour's placed orders", lambda: self.text("#total-placed b") == "16", timeout=10)
        self.screenshot("overview-last-hour")
        self.collect_console()
        if self.console_errors:
            raise Check("browser console errors:\n  " + "\n  ".join(self.console_errors))

    def close(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def main():
    parser = argparse.ArgumentParser()
    for name in ["base", "out", "admin-token", "customer-token", "management", "vhost"]:
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    test = ConsoleTest(args)
    try:
        test.run()
    except Exception as error:
        try:
            test.screenshot("failure")
            test.collect_console()
        except Exception:
            pass
        print(f"FAILED: {error}", file=sys.stderr)
        if test.console_errors:
            print("browser console:\n  " + "\n  ".join(test.console_errors), file=sys.stderr)
        test.close()
        return 1
    test.close()
    print("console: every step passed, no browser console error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
