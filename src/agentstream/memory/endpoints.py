"""TEMPORARY — replaced by the memory feature."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/memories", tags=["memories"])
