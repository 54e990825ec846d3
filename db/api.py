"""FastAPI dependencies shared by every router: a session per request, closed afterwards."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session


def get_session(request: Request) -> Iterator[Session]:
    # The endpoint is the request boundary and commits; anything uncommitted is rolled back here.
    with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
