#!/usr/bin/env python3
"""SAP's own OData client, pyodata (unchanged), against the C4C simulator.

Usage: pyodata_check.py SERVICE_URL USER PASSWORD
An outside client agreeing with the simulator is our check on its fidelity: pyodata must parse the
$metadata, list (following __next links), filter, create and update employees. Exits non-zero with
a message on the first disagreement.
"""

import sys

import pyodata
import requests
from pyodata.exceptions import HttpError


def check(cond, message):
    if not cond:
        print(f"FAIL: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    url, user, password = sys.argv[1:4]
    if not url.endswith("/"):
        url += "/"
    session = requests.Session()
    session.auth = (user, password)

    # The CSRF fetch exactly as pyodata's documentation shows it.
    response = session.head(url, headers={"x-csrf-token": "fetch"})
    check(response.status_code == 200, f"CSRF fetch status {response.status_code}")
    token = response.headers.get("x-csrf-token", "")
    check(len(token) > 0, "no CSRF token returned")
    session.headers.update({"x-csrf-token": token})

    client = pyodata.Client(url, session)
    employee = client.schema.entity_type("Employee")
    check(employee.proprty("UserID").max_length == 40, "UserID max length")
    check(not employee.proprty("ETag").filterable, "ETag must not be filterable")
    check(employee.proprty("ObjectID") in employee.key_proprties, "ObjectID is the key")
    check(not client.schema.entity_set("EmployeeCollection").deletable, "EmployeeCollection not deletable")
    roles = client.schema.entity_type("EmployeeUserBusinessRoleAssignment")
    check(all(not p.updatable for p in roles.proprties()), "role assignment fields not updatable")

    employees = client.entity_sets.EmployeeCollection

    # List with inline count and server-driven paging.
    first = employees.get_entities().count(inline=True).execute()
    total = first.total_count
    check(len(first) == 1000, f"first page has {len(first)} entries, expected 1000")
    seen = len(first)
    next_url = first.next_url
    while next_url:
        page = employees.get_entities().next_url(next_url).execute()
        seen += len(page)
        next_url = page.next_url
    check(seen == total, f"followed __next links to {seen} entries, $inlinecount said {total}")
    check(isinstance(first[0].CreatedOn.year, int), "CreatedOn parsed as a datetime")

    # Filters: a raw one with a doubled quote, and pyodata's own startswith form.
    created = (
        employees.create_entity()
        .set(FirstName="Seán", LastName="O'Data", UserID="PY.ODATA", Email="py.odata@example.com")
        .execute()
    )
    check(len(created.ObjectID) == 32, f"ObjectID {created.ObjectID}")
    check(created.EmployeeID, "EmployeeID assigned")
    found = employees.get_entities().filter("LastName eq 'O''Data'").execute()
    check([e.ObjectID for e in found] == [created.ObjectID], "filter by LastName with a quote")
    found = employees.get_entities().filter(LastName__startswith="O'Da").execute()
    check(len(found) == 1, "startswith(...) eq true")
    found = employees.get_entities().filter(UserID="PY.ODATA", UserLockedIndicator=False).execute()
    check(len(found) == 1, "filter with and on two properties")

    # Update (PATCH), then read back by key.
    employees.update_entity(ObjectID=created.ObjectID).set(UserLockedIndicator=True, MobilePhoneNumber="+49 30 1").execute()
    again = employees.get_entity(created.ObjectID).execute()
    check(again.UserLockedIndicator is True, "UserLockedIndicator updated")
    check(again.MobilePhoneNumber == "+49 30 1", "MobilePhoneNumber updated")
    check(again.FirstName == "Seán", "accents survive")

    # What C4C refuses, the simulator refuses too: 400, not an empty list.
    try:
        employees.get_entities().filter("FirstName ne 'x'").execute()
        check(False, "ne must be refused")
    except HttpError as err:
        check(err.response.status_code == 400, f"ne refused with {err.response.status_code}")

    print(f"pyodata OK: {total} employees listed, create/filter/update agreed")


if __name__ == "__main__":
    main()
