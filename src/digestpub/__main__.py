from digestpub.app.cli import main

main()
