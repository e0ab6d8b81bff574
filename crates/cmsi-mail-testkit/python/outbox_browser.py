"""Drives the outbox viewer in headless Chromium (Debian's, through Playwright)
and prints what a person would see, as JSON; the Rust test asserts on it.

    outbox_browser.py --url http://127.0.0.1:PORT/ --chromium /usr/bin/chromium \
        --downloads DIR --screenshot FILE --screenshot-id ID [--control URL]

For every message row: its subject cell and whether it is marked unreadable;
then each message opened by a click: the images of its HTML body (loaded or
not), the notices shown, and every attachment downloaded through its link.
The screenshot shows message --screenshot-id. --control is loaded last in a
page of its own, so the test can see that its watcher notices the browser.
"""

import argparse
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

# Chromium as root with no network: these keep it quiet and working.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


def body_frame(page):
    handle = page.locator("#body-frame").element_handle()
    return handle.content_frame() if handle else None


def images(page):
    """The <img> elements of the HTML body once each finished loading."""
    frame = body_frame(page)
    if frame is None:
        return []
    frame.wait_for_load_state("load", timeout=TIMEOUT_MS)
    deadline = time.time() + TIMEOUT_MS / 1000
    script = "() => Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete, naturalWidth: i.naturalWidth}))"
    found = frame.evaluate(script)
    while not all(image["complete"] for image in found) and time.time() < deadline:
        time.sleep(0.05)
        found = frame.evaluate(script)
    return found


def notice(page, selector, wait_ms):
    """The notice's text once it stopped changing (the page updates it as the
    browser's reports come in), or None when it does not appear."""
    locator = page.locator(f"{selector}:not([hidden])")
    try:
        locator.wait_for(state="visible", timeout=wait_ms)
    except Exception:
        return None
    text, since, deadline = locator.inner_text(), time.time(), time.time() + 10
    while time.time() - since < 2 and time.time() < deadline:
        time.sleep(0.1)
        now = locator.inner_text()
        if now != text:
            text, since = now, time.time()
    return text


def open_message(page, message_id, downloads):
    page.locator(f'#list tr.message[data-id="{message_id}"]').click()
    # Rendered when the pane names this message's file: until then it may
    # still show the previous message (its tabs, its notices).
    page.wait_for_function(
        "id => document.querySelector('#list tr.selected')?.dataset.id === id"
        " && !document.querySelector('#message-pane').hidden"
        " && (document.querySelector('#m-meta dd.file')?.textContent || '').startsWith(id + '.eml')",
        arg=message_id,
        timeout=TIMEOUT_MS,
    )
    html_tab = page.locator('#tabs [data-tab="html"]')
    has_html = not html_tab.is_disabled()
    if has_html:
        # The frame's src is set as the view arrives; wait for that document.
        page.wait_for_function(
            "() => (document.querySelector('#body-frame').getAttribute('src') || '').endsWith('/html')",
            timeout=TIMEOUT_MS,
        )
    seen = {
        "subject": page.locator("#m-subject").inner_text(),
        "meta": page.locator("#m-meta").inner_text(),
        "html": has_html,
        "images": images(page) if has_html else [],
        # Reports reach the server while the frame loads; the page asks again
        # for a few seconds.
        # (Playwright takes a timeout of 0 for "no timeout": 1 ms is "now".)
        "blocked_notice": notice(page, "#notice-blocked", 6000 if has_html else 1),
        "unreadable_notice": notice(page, "#notice-unreadable", 500),
        "attachments": [],
    }
    links = page.locator("#m-parts a.attachment")
    for i in range(links.count()):
        link = links.nth(i)
        with page.expect_download(timeout=TIMEOUT_MS) as info:
            link.click()
        download = info.value
        index = link.get_attribute("data-index")
        path = os.path.join(downloads, f"{message_id}-{index}")
        download.save_as(path)
        seen["attachments"].append(
            {
                "link_text": link.inner_text(),
                "suggested_filename": download.suggested_filename,
                "path": path,
            }
        )
    return seen


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--chromium", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--screenshot-id", required=True)
    parser.add_argument("--control")
    parser.add_argument("--search", help="typed into the search box; the rows shown are recorded")
    parser.add_argument(
        "--new-mail",
        nargs=2,
        metavar=("FROM", "TO"),
        help="copied into the outbox while the page is open; whether its row appears is recorded",
    )
    args = parser.parse_args()

    result = {"rows": [], "messages": {}, "status": None, "console_errors": []}
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh profile directory of its own.
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=FLAGS, headless=True
        )
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1280, "height": 860}
        )
        page = context.new_page()
        # Errors of the viewer itself; the message frame's own (the policy
        # blocking its loads) are expected.
        page.on("pageerror", lambda error: result["console_errors"].append(str(error)))
        page.on(
            "console",
            lambda message: message.type == "error"
            and not message.location.get("url", "").endswith("/html")
            and result["console_errors"].append(message.text),
        )
        page.goto(args.url, timeout=TIMEOUT_MS)
        page.wait_for_selector("#list tr.message", timeout=TIMEOUT_MS)
        rows = page.locator("#list tr.message")
        for i in range(rows.count()):
            row = rows.nth(i)
            result["rows"].append(
                {
                    "id": row.get_attribute("data-id"),
                    "subject": row.locator("td.subject").inner_text(),
                    "unreadable": "unreadable" in (row.get_attribute("class") or ""),
                }
            )
        result["status"] = page.locator("#status").inner_text()
        for row in result["rows"]:
            result["messages"][row["id"]] = open_message(page, row["id"], args.downloads)

        open_message(page, args.screenshot_id, args.downloads)
        page.screenshot(path=args.screenshot)

        if args.search:
            page.fill("#search", args.search)
            wanted = args.search.lower()
            deadline = time.time() + TIMEOUT_MS / 1000
            while time.time() < deadline:
                subjects = page.locator("#list tr.message td.subject").all_inner_texts()
                if all(wanted in subject.lower() for subject in subjects):
                    break
                time.sleep(0.1)
            result["search_rows"] = page.locator("#list tr.message").evaluate_all(
                "rows => rows.map(r => r.dataset.id)"
            )
            page.fill("#search", "")
            page.wait_for_function(
                "n => document.querySelectorAll('#list tr.message').length === n",
                arg=len(result["rows"]),
                timeout=TIMEOUT_MS,
            )

        if args.new_mail:
            # Nothing the page does from here on reloads the list but its poll.
            time.sleep(1)
            source, target = args.new_mail
            # As the file transport does it: a hidden temporary file, renamed.
            partial = os.path.join(os.path.dirname(target), ".tmp-browser-test.part")
            with open(source, "rb") as src, open(partial, "wb") as dst:
                dst.write(src.read())
            os.replace(partial, target)
            new_id = os.path.basename(target)[: -len(".eml")]
            try:
                page.wait_for_selector(f'#list tr.message[data-id="{new_id}"]', timeout=15_000)
                result["new_mail_appeared"] = True
            except Exception:
                result["new_mail_appeared"] = False

        if args.control:
            control = context.new_page()
            try:
                control.goto(args.control, timeout=TIMEOUT_MS)
            except Exception as error:  # the page only has to be asked for
                result["control_error"] = str(error)
            control.close()
        browser.close()
    json.dump(result, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
