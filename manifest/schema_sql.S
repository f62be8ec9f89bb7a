/*
 * manifest/schema.sql and schema_pg.sql inside the binary, NUL-terminated,
 * as `const char manifest_schema_sql[]` and `manifest_schema_pg_sql[]`
 * (the backends hand them to schema.c). The Makefile makes this object
 * depend on both: -MMD cannot see an .incbin.
 */
	.section .rodata
	.global manifest_schema_sql
	.hidden manifest_schema_sql
	.type manifest_schema_sql, @object
manifest_schema_sql:
	.incbin "manifest/schema.sql"
	.byte 0
	.size manifest_schema_sql, . - manifest_schema_sql

	.global manifest_schema_pg_sql
	.hidden manifest_schema_pg_sql
	.type manifest_schema_pg_sql, @object
manifest_schema_pg_sql:
	.incbin "manifest/schema_pg.sql"
	.byte 0
	.size manifest_schema_pg_sql, . - manifest_schema_pg_sql

	/* no executable stack for the objects this one is linked with */
	.section .note.GNU-stack, "", @progbits
