from digestpub.cli import main

main()
