"""credit public search

Indexes for the public search of the dishonest-debtor list (zhixing.credit.public): the exact
name leads to party ids from ``parties (name, id)`` alone, and each party's published listings
(with their sort key) from ``credit_listings (party_id, status, publish_on, id)`` alone, so the
search is two index range scans whatever the size of the list. ``(name, id)`` replaces
``(name)``: it serves every look-up the narrower one did.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_index('ix_parties_name_id', ['name', 'id'], unique=False)
        batch_op.drop_index('ix_parties_name')

    with op.batch_alter_table('credit_listings', schema=None) as batch_op:
        batch_op.create_index('ix_credit_listings_public', ['party_id', 'status', 'publish_on',
                                                            'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('credit_listings', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_listings_public')

    with op.batch_alter_table('parties', schema=None) as batch_op:
        batch_op.create_index('ix_parties_name', ['name'], unique=False)
        batch_op.drop_index('ix_parties_name_id')
