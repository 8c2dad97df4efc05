"""Storage: SQLAlchemy Core on asyncio; SQLite (aiosqlite) embedded, PostgreSQL (asyncpg) too."""
