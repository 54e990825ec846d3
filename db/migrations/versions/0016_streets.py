"""Street centerlines, intersections and landmarks for street-level geoparsing: no schema change.

Streets and landmarks are gazetteer entries (kind "street", "landmark", "station"; a street's borough in
`code`), stored in gazetteer_entries by `tocsin gazetteer import-streets/import-landmarks`, replaced per
source. Intersections are derived from the street lines when a process builds its index
(geo.gazetteer_store.build_index), so there is nothing else to store. The revision stays so that the
chain 0015 -> 0016 -> 0017 holds.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
