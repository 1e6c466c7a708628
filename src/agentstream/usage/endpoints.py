"""TEMPORARY — replaced by the usage feature."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/usage", tags=["usage"])
