"""Errors of the reports plane."""

from __future__ import annotations

from dataintel.errors import Conflict, ServiceError


class ReportExpired(ServiceError):
    status = 410
    title = "Gone"
    type_slug = "report-expired"


class ReportFailed(Conflict):
    """GET of a report whose generation failed: there is no file, only the reason."""

    type_slug = "report-failed"


class ReportError(Exception):
    """A kind cannot produce its report from these parameters and data (a reason the client
    can act on, shown as the report's error)."""
