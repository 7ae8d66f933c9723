"""Marshmallow schemas: wire (camelCase) ⇄ Python (snake_case), one module per resource."""
