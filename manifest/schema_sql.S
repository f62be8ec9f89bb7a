/*
 * manifest/schema.sql inside the binary, NUL-terminated, as
 * `const char manifest_schema_sql[]` (schema.c reads it). The Makefile
 * makes this object depend on schema.sql: -MMD cannot see an .incbin.
 */
	.section .rodata
	.global manifest_schema_sql
	.hidden manifest_schema_sql
	.type manifest_schema_sql, @object
manifest_schema_sql:
	.incbin "manifest/schema.sql"
	.byte 0
	.size manifest_schema_sql, . - manifest_schema_sql

	/* no executable stack for the objects this one is linked with */
	.section .note.GNU-stack, "", @progbits
