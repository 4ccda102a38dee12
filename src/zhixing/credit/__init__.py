"""Credit sanctions (失信被执行人名单) screening: in-memory indexes that partners' screening
requests are answered from (RULES.md, Dishonest-debtor list)."""
