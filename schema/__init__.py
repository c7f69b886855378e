"""The numbered SQL migrations, as a package so they ship with the program.

A package (not a loose folder) is what a wheel and a PyInstaller build carry along: its directory
is found the same way in a checkout, an installed wheel and a frozen binary (`Path(schema.__file__)`).
"""
